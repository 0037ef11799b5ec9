//! What a person sees on stdout: the `--check-config` report and the start-up banner.

use crate::chain::Chain;
use crate::config::Config;
use crate::plugin;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;

/// `--check-config`: the configuration and the chain, like `nginx -t`.
pub fn check_report(config: &Config, chain: &Chain) -> String {
    let mut out = format!(
        "configuration {} is valid\nlisten {}\nroot {}\nworkers {}\n",
        config.path.display(),
        config.listen,
        config.root.display(),
        config.workers
    );
    out.push_str("chain (first case whose test() is true acts):\n");
    for line in case_lines(chain, "  ", &Style::PLAIN) {
        out.push_str(&line);
    }
    out
}

/// The start-up banner. Its first line is `listening on http://ADDR/`, always plain: tests
/// and scripts read the port from it. Colour only when `colour` (stdout is a terminal).
pub fn startup(addr: SocketAddr, root: &Path, chain: &Chain, colour: bool) -> String {
    let st = if colour { Style::ANSI } else { Style::PLAIN };
    let mut out = format!("listening on http://{addr}/\n");
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
    for line in case_lines(chain, "    ", &st) {
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
    chain: &'a Chain,
    indent: &'a str,
    st: &'a Style,
) -> impl Iterator<Item = String> + 'a {
    chain.cases.iter().enumerate().map(move |(i, p)| {
        let described = plugin::describe(p);
        let rest = described
            .strip_prefix(p.name.as_str())
            .unwrap_or(&described);
        format!("{indent}{}. {}{}{}{rest}\n", i + 1, st.case, p.name, st.end)
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
