//! The fuzz targets (`fuzz/src/targets`) on every test run: each runs on its seed corpus (made
//! from the frames captured from real clients), on the inputs committed under
//! `fuzz/regressions/<target>/` (crashes fuzzing found, once fixed), and on a fixed number of
//! deterministic mutations of the seeds (bit flips, byte changes, insertions, deletions,
//! truncations and splices). The coverage-guided runs are `fuzz/run.sh` (cargo fuzz, nightly).

mod common;

#[path = "../fuzz/src/targets/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use std::path::{Path, PathBuf};

use common::Rng;

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0x7f, 0x80, 0xff, 1][rng.below(5)];
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = (1 + rng.below(8)).min(v.len() - i);
                v.drain(i..i + n);
            }
            4 => v.truncate(rng.below(v.len() + 1)),
            5 if !other.is_empty() => {
                let i = rng.below(v.len() + 1);
                let j = rng.below(other.len());
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            _ if v.len() >= 4 => {
                // A plausible length or count somewhere: the fields decoders trust least.
                let i = rng.below(v.len() - 3);
                let n = [0u32, 1, 0x7fff_ffff, 0xffff_ffff, 1 << 20][rng.below(5)];
                v[i..i + 4].copy_from_slice(&n.to_be_bytes());
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// How a target's inputs are shaped, so mutations reach past its outer checks.
#[derive(Clone, Copy)]
enum Shape {
    /// Any bytes.
    Raw,
    /// A flags byte then a batch: mostly with the length and CRC repaired, often without producer.
    Batch,
    /// Frames, each a 2-byte length and its bytes: one frame mutated, then framed again.
    Frames,
}

fn frames_of(input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = input;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    out
}

fn shaped(rng: &mut Rng, shape: Shape, seed: &[u8], other: &[u8]) -> Vec<u8> {
    match shape {
        Shape::Raw => mutate(rng, seed, other),
        Shape::Batch => {
            let mut v = mutate(rng, seed, other);
            if !v.is_empty() && rng.below(4) != 0 {
                v[0] |= 0b11;
            }
            if !v.is_empty() && rng.below(2) == 0 {
                v[0] |= 0b1_0000;
            }
            v
        }
        Shape::Frames => {
            let mut frames = frames_of(seed);
            if frames.is_empty() {
                return mutate(rng, seed, other);
            }
            let i = rng.below(frames.len());
            let donor = frames_of(other);
            let donor = donor
                .get(rng.below(donor.len().max(1)))
                .cloned()
                .unwrap_or_default();
            frames[i] = mutate(rng, &frames[i], &donor);
            frames
                .iter()
                .flat_map(|f| {
                    let len = f.len().min(usize::from(u16::MAX));
                    [&(len as u16).to_be_bytes()[..], &f[..len]].concat()
                })
                .collect()
        }
    }
}

fn replay(target: &str, run: fn(&[u8]), shape: Shape, mutations: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = tempfile::tempdir().unwrap();
    targets::write_seeds(&root.join("tests/golden"), corpus.path());
    let mut inputs = read_dir(&corpus.path().join(target));
    assert!(!inputs.is_empty(), "no seeds for {target}");
    inputs.extend(read_dir(&root.join("fuzz/regressions").join(target)));
    for input in &inputs {
        run(input);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for _ in 0..mutations {
        let seed = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        run(&shaped(&mut rng, shape, seed, other));
    }
}

#[test]
fn frame() {
    replay("frame", targets::frame::run, Shape::Raw, 1_000_000);
}

#[test]
fn decode() {
    replay("decode", targets::decode::run, Shape::Raw, 200_000);
}

#[test]
fn batch() {
    replay("batch", targets::batch::run, Shape::Batch, 300_000);
}

#[test]
fn dispatch() {
    replay("dispatch", targets::dispatch::run, Shape::Frames, 50_000);
}
