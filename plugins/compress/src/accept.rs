//! `Accept-Encoding` (RFC 9110 §12.5.3): which of our codings the client takes, by its
//! weights, ties broken by the server's order of preference.

use crate::coding::Coding;

/// Weights in thousandths (`q=0.5` is 500), as RFC 9110 §12.4.2 allows three decimals.
type Weight = u16;

/// One `coding;q=x` entry, the coding name lower-cased.
struct Entry {
    coding: String,
    q: Weight,
}

/// Parse the field; entries with a malformed weight are left out (as if unlisted).
fn entries(field: &[u8]) -> Vec<Entry> {
    let field = String::from_utf8_lossy(field);
    field
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let coding = parts.next()?.trim().to_ascii_lowercase();
            if coding.is_empty() {
                return None;
            }
            let mut q = 1000;
            for p in parts {
                let (k, v) = p.split_once('=')?;
                if k.trim().eq_ignore_ascii_case("q") {
                    q = weight(v.trim())?;
                }
            }
            Some(Entry { coding, q })
        })
        .collect()
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn weight(v: &str) -> Option<Weight> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: Weight = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The weight the client gives `coding`: its own entry (`x-gzip` counts as `gzip`, RFC 9110
/// §8.4.1.3), else `*`'s, else none (not acceptable).
fn weight_of(entries: &[Entry], coding: Coding) -> Option<Weight> {
    let named =
        |e: &&Entry| e.coding == coding.token() || (coding == Coding::Gzip && e.coding == "x-gzip");
    entries
        .iter()
        .find(named)
        .or_else(|| entries.iter().find(|e| e.coding == "*"))
        .map(|e| e.q)
}

/// The codings to answer with, best first: those of the highest weight above zero, in
/// `preference` order. Empty when the client sent no `Accept-Encoding` (it asked for
/// nothing), refused every coding, or ranks `identity` above them all.
pub fn choose(field: Option<&[u8]>, preference: &[Coding]) -> Vec<Coding> {
    let Some(field) = field else {
        return Vec::new();
    };
    let entries = entries(field);
    let weighted: Vec<(Coding, Weight)> = preference
        .iter()
        .filter_map(|&c| weight_of(&entries, c).map(|q| (c, q)))
        .filter(|&(_, q)| q > 0)
        .collect();
    let Some(best) = weighted.iter().map(|&(_, q)| q).max() else {
        return Vec::new();
    };
    // Identity is always acceptable; only an explicit higher weight makes it preferred.
    let identity = entries.iter().find(|e| e.coding == "identity").map(|e| e.q);
    if identity.is_some_and(|q| q > best) {
        return Vec::new();
    }
    weighted
        .into_iter()
        .filter(|&(_, q)| q == best)
        .map(|(c, _)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    fn pick(field: &str) -> Vec<Coding> {
        choose(Some(field.as_bytes()), &Coding::ALL)
    }

    #[test]
    fn weights_follow_the_rfc_grammar() {
        assert_eq!(weight("1"), Some(1000));
        assert_eq!(weight("1.000"), Some(1000));
        assert_eq!(weight("0.5"), Some(500));
        assert_eq!(weight("0.05"), Some(50));
        assert_eq!(weight("0"), Some(0));
        assert_eq!(weight("0."), Some(0));
        for bad in ["1.5", "2", "0.1234", "-1", "x", ".5", ""] {
            assert_eq!(weight(bad), None, "{bad}");
        }
    }

    #[test]
    fn ties_go_to_the_servers_order_and_weights_win_over_it() {
        assert_eq!(pick("gzip, deflate, br, zstd"), vec![Br, Zstd, Gzip]);
        assert_eq!(pick("gzip;q=1, br;q=0.8"), vec![Gzip]);
        assert_eq!(pick("GZIP"), vec![Gzip]);
        assert_eq!(pick("x-gzip"), vec![Gzip]);
        assert_eq!(pick("deflate"), Vec::<Coding>::new());
        assert_eq!(choose(Some(b"gzip, zstd"), &[Gzip, Zstd]), vec![Gzip, Zstd]);
    }

    #[test]
    fn q_zero_refuses_and_identity_can_outrank() {
        assert_eq!(pick("br;q=0, gzip"), vec![Gzip]);
        assert_eq!(pick("*;q=0"), Vec::<Coding>::new());
        assert_eq!(pick("*;q=0.5, br;q=0"), vec![Zstd, Gzip]);
        assert_eq!(pick("gzip;q=0.5, identity"), Vec::<Coding>::new());
        assert_eq!(pick("gzip, identity;q=0.5"), vec![Gzip]);
        assert_eq!(pick("gzip;q=0.5, identity;q=0.5"), vec![Gzip]);
        assert_eq!(pick("identity"), Vec::<Coding>::new());
    }

    #[test]
    fn no_field_or_an_empty_one_means_no_coding() {
        assert_eq!(choose(None, &Coding::ALL), Vec::<Coding>::new());
        assert_eq!(pick(""), Vec::<Coding>::new());
        assert_eq!(pick(" , "), Vec::<Coding>::new());
    }

    #[test]
    fn a_malformed_weight_leaves_its_entry_out() {
        assert_eq!(pick("br;q=2, gzip"), vec![Gzip]);
        assert_eq!(pick("br;q"), Vec::<Coding>::new());
        assert_eq!(pick("br ; foo=bar ; q=0.9, gzip;q=0.1"), vec![Br]);
    }
}
