//! Turns the `RESULT` lines of a standard run (`benchmarks/standard.sh`) into the
//! tables of `BENCHMARKS.md` and an SVG plot.
//!
//! ```text
//! report --results FILE --markdown BENCHMARKS.md --svg benchmarks/standard.svg
//! ```
//!
//! The tables replace what lies between the `<!-- standard:begin -->` and
//! `<!-- standard:end -->` markers of the markdown file; the rest is left as it is.

mod plot;
mod results;
mod tables;

use std::process::ExitCode;

const BEGIN: &str = "<!-- standard:begin -->";
const END: &str = "<!-- standard:end -->";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .ok_or(format!("missing {name} PATH"))
    };
    let (results_path, markdown_path, svg_path) =
        (flag("--results")?, flag("--markdown")?, flag("--svg")?);
    let text =
        std::fs::read_to_string(&results_path).map_err(|e| format!("{results_path}: {e}"))?;
    let runs = results::parse(&text)?;
    let note = args
        .iter()
        .position(|a| a == "--note")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let section = tables::render(&runs, &note, &svg_path);
    let markdown =
        std::fs::read_to_string(&markdown_path).map_err(|e| format!("{markdown_path}: {e}"))?;
    let (Some(begin), Some(end)) = (markdown.find(BEGIN), markdown.find(END)) else {
        return Err(format!("{markdown_path} has no {BEGIN} ... {END} markers"));
    };
    let updated = format!(
        "{}{BEGIN}\n{section}{}",
        &markdown[..begin],
        &markdown[end..]
    );
    std::fs::write(&markdown_path, updated).map_err(|e| format!("{markdown_path}: {e}"))?;
    plot::draw(&runs, &svg_path)?;
    println!("report: wrote {markdown_path} and {svg_path}");
    Ok(())
}
