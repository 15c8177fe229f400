//! Which asyncio task, or thread, a Python stack runs in: the frame just
//! inside the event loop's own frames is the task's outermost coroutine,
//! the same for every call the task makes and for the write of its
//! response. Stacks must still hold their frames' addresses.

use super::frame::Frame;

/// The task a stack runs in: the frame just inside the event loop's own
/// frames (`Handle._run` of asyncio's loop, or the `Runner.run` /
/// `run_until_complete` that a loop written in C — uvloop — was entered
/// from). `None`: no event loop on the stack, so a thread of its own.
pub fn task_root(frames: &[Frame]) -> Option<u64> {
    let loop_frame = frames.iter().position(is_event_loop_frame)?;
    Some(frames.get(loop_frame.checked_sub(1)?)?.frame)
}

/// asyncio's frames that run a task's step (innermost first on the stack).
fn is_event_loop_frame(frame: &Frame) -> bool {
    let in_asyncio = |module: &str| frame.file.ends_with(&format!("asyncio/{module}.py"));
    // 3.11+ name methods by qualified name, 3.8–3.10 by name.
    let name = frame.qualname.rsplit('.').next().unwrap_or_default();
    match name {
        "_run" => in_asyncio("events"),
        "run" => in_asyncio("runners"),
        "run_until_complete" | "run_forever" | "_run_once" => in_asyncio("base_events"),
        _ => false,
    }
}

/// The frames of `frames` (innermost first) that belong to the task or
/// thread: all but the event loop's and the code that started it.
pub fn task_frames(frames: &[Frame]) -> &[Frame] {
    let end = frames.iter().position(is_event_loop_frame).unwrap_or(frames.len());
    &frames[..end]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    /// Runs on its own thread.
    Thread,
    /// Runs in the asyncio task whose outermost coroutine frame is this.
    Task(u64),
}

impl Concurrency {
    /// From a stack whose frames still hold their addresses.
    pub fn of(stack: &[Frame]) -> Self {
        task_root(stack).map_or(Self::Thread, Self::Task)
    }
}

/// Stacks as the probes see them, for the tests of what reads them.
#[cfg(test)]
pub(crate) mod samples {
    use super::Frame;

    pub fn frame(qualname: &str, file: &str, address: u64) -> Frame {
        Frame { qualname: qualname.into(), file: file.into(), line: Some(1), code: address, frame: address }
    }

    /// A handler's call inside uvicorn's request task on asyncio's own loop
    /// (innermost first), with the task's root coroutine at `root`.
    pub fn task_stack(root: u64) -> Vec<Frame> {
        vec![
            frame("AsyncClient.send", "/venv/lib/python3.12/site-packages/httpx/_client.py", 0x10),
            frame("ask", "/srv/app/main.py", 0x20),
            frame("RequestResponseCycle.run_asgi", "/venv/site-packages/uvicorn/protocols/http/h11_impl.py", root),
            frame("Handle._run", "/usr/lib/python3.12/asyncio/events.py", 0x40),
            frame("BaseEventLoop._run_once", "/usr/lib/python3.12/asyncio/base_events.py", 0x50),
            frame("<module>", "/srv/app/main.py", 0x60),
        ]
    }

    pub fn thread_stack() -> Vec<Frame> {
        vec![
            frame("ask", "/srv/app/views.py", 0x20),
            frame("Thread.run", "/usr/lib/python3.12/threading.py", 0x30),
            frame("Thread._bootstrap", "/usr/lib/python3.12/threading.py", 0x40),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::samples::{frame, task_stack, thread_stack};
    use super::*;

    #[test]
    fn tells_tasks_from_threads() {
        assert_eq!(task_root(&task_stack(0x1000)), Some(0x1000));
        assert_eq!(task_root(&thread_stack()), None);
        // uvloop: the loop is C; the innermost Python frame below the task is asyncio's Runner.run.
        let uvloop = [
            frame("ask", "/srv/app/main.py", 0x20),
            frame("run_asgi", "/venv/site-packages/uvicorn/protocols/http/httptools_impl.py", 0x2000),
            frame("Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 0x40),
            frame("run", "/usr/lib/python3.12/asyncio/runners.py", 0x50),
        ];
        assert_eq!(task_root(&uvloop), Some(0x2000));
        // 3.8–3.10 name methods without their class.
        let old = [frame("fetch", "/srv/a.py", 0x1), frame("_run", "/usr/lib/python3.9/asyncio/events.py", 0x2)];
        assert_eq!(task_root(&old), Some(0x1));
    }
}
