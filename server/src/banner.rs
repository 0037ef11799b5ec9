//! What a person sees on stdout: the `--check-config` report and the start-up banner.

use crate::chain::Chain;
use crate::config::Config;
use crate::plugin;
use std::io::IsTerminal;
use std::path::Path;

/// `--check-config`: the configuration and the chain, like `nginx -t`.
pub fn check_report(config: &Config, chain: &Chain) -> String {
    let mut out = format!(
        "configuration {} is valid\nlisten {}\nroot {}\nworkers {}\n",
        config.path.display(),
        config
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        config.root.display(),
        config.workers
    );
    out.push_str("chain (first case whose test() is true acts):\n");
    for line in case_lines(&described(chain), "  ", &Style::PLAIN) {
        out.push_str(&line);
    }
    out
}

/// Cases as (name, description), as a worker reports them to its master.
pub fn described(chain: &Chain) -> Vec<(String, String)> {
    chain
        .cases
        .iter()
        .map(|p| (p.name.clone(), plugin::describe(p)))
        .collect()
}

/// The start-up banner. Its first line is `listening on http://ADDR/` (one such line per
/// address, `https://` on TLS listeners), always plain: tests and scripts read the port
/// from it. Colour only when `colour` (stdout is a terminal).
pub fn startup(urls: &[String], root: &Path, cases: &[(String, String)], colour: bool) -> String {
    let st = if colour { Style::ANSI } else { Style::PLAIN };
    let mut out = String::new();
    for url in urls {
        out.push_str(&format!("listening on {url}\n"));
    }
    out.push_str(&format!(
        "  {}root{}   {}\n",
        st.label,
        st.end,
        root.display()
    ));
    out.push_str(&format!(
        "  {}chain{}  first case whose test() is true acts:\n",
        st.label, st.end
    ));
    for line in case_lines(cases, "    ", &st) {
        out.push_str(&line);
    }
    out
}

/// Colour for the banner: on when stdout is a terminal and NO_COLOR is not set (no-color.org).
pub fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty())
}

/// One line per case: `1. hello 0.1.0 (ABI 1.0, GET, HEAD; test/act)` after `indent`, the name in colour.
fn case_lines<'a>(
    cases: &'a [(String, String)],
    indent: &'a str,
    st: &'a Style,
) -> impl Iterator<Item = String> + 'a {
    cases.iter().enumerate().map(move |(i, (name, described))| {
        let rest = described.strip_prefix(name.as_str()).unwrap_or(described);
        format!("{indent}{}. {}{}{}{rest}\n", i + 1, st.case, name, st.end)
    })
}

/// ANSI escapes for the parts of the banner (empty when plain).
struct Style {
    label: &'static str,
    case: &'static str,
    end: &'static str,
}

impl Style {
    const PLAIN: Style = Style {
        label: "",
        case: "",
        end: "",
    };
    /// Bold labels, green case names.
    const ANSI: Style = Style {
        label: "\x1b[1m",
        case: "\x1b[32m",
        end: "\x1b[0m",
    };
}
