//! Empty library target: lets `tracer`'s build script depend on this crate so
//! Cargo rebuilds the kernel object when its sources change. The programs
//! themselves are the `tracer` binary target (`src/main.rs`), built for
//! `bpfel-unknown-none` by `aya-build`.
#![no_std]
