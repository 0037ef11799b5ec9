//! What a person sees on stdout: the `--check-config` report and the start-up banner.

use crate::chain::Chain;
use crate::config::{Config, Site};
use crate::plugin;
use crate::sites::Sites;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// `--check-config`: the configuration and the chain, like `nginx -t`; with `[[sites]]`,
/// every site's names, root and chain after it.
pub fn check_report(config: &Config, sites: &Sites) -> String {
    let chains = sites.chains();
    let mut out = default_report(config, &chains[0]);
    if chains.len() == 1 {
        return out;
    }
    out.push_str(&format!(
        "default site: {} (answers every host no other site names)
",
        chains[0].site.label
    ));
    for chain in chains {
        out.push_str(&format!(
            "site {}
",
            chain.site.label
        ));
        if !chain.site.written.is_empty() {
            out.push_str(&format!(
                "  server_names {}
",
                chain.site.written.join(", ")
            ));
        }
        out.push_str(&format!(
            "  root {}
",
            chain.site.root.display()
        ));
        if let Some(port) = chain.site.https_redirect {
            out.push_str(&format!(
                "  https_redirect to port {port} (plain HTTP only)
"
            ));
        }
        out.push_str("  chain:\n");
        for line in case_lines(&described(chain), "    ", &Style::PLAIN) {
            out.push_str(&line);
        }
    }
    out
}

/// The report of a server with one site (the default site's part with several).
fn default_report(config: &Config, chain: &Chain) -> String {
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

/// The banner's sites part: one line for each site other than the default (whose root and
/// chain the banner shows above), empty without `[[sites]]`.
pub fn sites(sites: &[Site], colour: bool) -> String {
    if sites.len() < 2 {
        return String::new();
    }
    let st = if colour { Style::ANSI } else { Style::PLAIN };
    let mut out = format!(
        "  {}sites{}  by Host; the root and chain above are {}'s, for any other host:\n",
        st.label, st.end, sites[0].label
    );
    for site in &sites[1..] {
        let cases: Vec<&str> = site.cases.iter().map(|c| c.name.as_str()).collect();
        let redirect = match site.https_redirect {
            Some(port) => format!("; plain HTTP redirected to https port {port}"),
            None => String::new(),
        };
        out.push_str(&format!(
            "    {}{}{}  root {}; chain {}{redirect}\n",
            st.case,
            site.written.join(", "),
            st.end,
            site.root.display(),
            cases.join(", ")
        ));
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

/// Every loop exists and signals are handled: say where we listen. Tests and scripts read
/// the first line to learn the port when listening on port 0.
pub fn announce(banner: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes());
    let _ = out.flush();
}
