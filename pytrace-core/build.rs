//! Build-time input embedded in the engine: the rank tables of OpenAI's
//! `o200k_base` and `cl100k_base` encodings for `src/llm/bpe.rs`, taken from
//! tiktoken-rs's vocabularies (a build dependency only: the engine counts
//! tokens with its own small encoder).

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::var("OUT_DIR")?;
    write_rank_table(&tiktoken_rs::o200k_base()?, &Path::new(&out_dir).join("o200k_base.ranks"))?;
    write_rank_table(&tiktoken_rs::cl100k_base()?, &Path::new(&out_dir).join("cl100k_base.ranks"))?;
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}

/// Every ordinary token (the ranks below the first special token, which
/// decode) sorted by its bytes, in the layout `src/llm/bpe.rs` reads:
/// little-endian u32 count N, N ranks, N + 1 offsets, then the bytes.
fn write_rank_table(encoding: &tiktoken_rs::CoreBPE, path: &Path) -> std::io::Result<()> {
    let first_special = encoding
        .special_tokens()
        .iter()
        .filter_map(|s| encoding.encode_with_special_tokens(s).first().copied())
        .min()
        .unwrap_or(u32::MAX);
    let mut tokens: Vec<(Vec<u8>, u32)> =
        (0..first_special).filter_map(|rank| Some((encoding.decode_bytes(&[rank]).ok()?, rank))).collect();
    tokens.sort();
    let mut table = Vec::new();
    table.extend((tokens.len() as u32).to_le_bytes());
    for (_, rank) in &tokens {
        table.extend(rank.to_le_bytes());
    }
    let mut offset = 0u32;
    table.extend(offset.to_le_bytes());
    for (bytes, _) in &tokens {
        offset += bytes.len() as u32;
        table.extend(offset.to_le_bytes());
    }
    for (bytes, _) in &tokens {
        table.extend(bytes);
    }
    std::fs::write(path, table)?;
    Ok(())
}
