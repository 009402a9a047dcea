//! `seeds <golden dir> <corpus dir>`: writes each fuzz target's seed corpus (see
//! `gregor_fuzz::targets::write_seeds`).

fn main() {
    let args: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    let [golden, corpus] = &args[..] else {
        eprintln!("usage: seeds <golden dir> <corpus dir>");
        std::process::exit(2);
    };
    let n = gregor_fuzz::targets::write_seeds(golden, corpus);
    println!("wrote {n} seeds from {}", golden.display());
}
