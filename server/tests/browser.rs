//! What a person sees: headless Chromium, against a real server on the demo site, opens the
//! listing at desktop and phone widths, sorts it, follows a link with awkward characters,
//! opens a missing page and submits the CGI form. Each step asserts on the DOM the browser
//! rendered (`--dump-dom`) and saves a screenshot. Skipped, saying so, without `chromium`.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The shipped chain, hidden_files first.
const CHAIN_SHIPPED: &str = r#"["hidden_files", "hello", "request_info", "cgi_file", "no_file", "existing_file", "directory_index_file", "directory_no_index_file", "always_fail"]"#;

const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);

/// A name with every character a link must escape, and one too long for a phone's width.
const AWKWARD: &str = "a file & <more> #1?.txt";
const LONG: &str =
    "a-very-long-name-without-any-spaces-that-must-wrap-on-a-phone-rather-than-push-the-size-and-date-off-the-screen.txt";

/// Chromium on the PATH, if installed (Debian's package is `chromium`).
fn chromium() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("chromium"))
        .find(|p| p.is_file())
}

/// One headless browser profile and where its screenshots go.
struct Browser {
    bin: PathBuf,
    profile: TempDir,
    shots: PathBuf,
    base: String,
}

impl Browser {
    /// Load `path` at `size`, save `shot`.png, and return the DOM as rendered once scripts
    /// and frames had up to 5 s of (virtual) time.
    fn open(&self, path: &str, size: (u32, u32), shot: &str) -> String {
        let png = self.shots.join(format!("{shot}.png"));
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .arg(format!("--window-size={},{}", size.0, size.1))
            .arg(format!("--screenshot={}", png.display()))
            .arg("--dump-dom")
            .arg(format!("{}{path}", self.base))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("chromium took over 20 s on {path}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "chromium failed on {path}");
        assert!(png.is_file(), "no screenshot for {path}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Copy the demo site, then add awkward names and the pages that drive the browser.
fn site(dir: &TempDir) -> PathBuf {
    let root = dir.path().join("www");
    copy_tree(&workspace().join("www"), &root);
    std::fs::write(
        root.join("listing").join(AWKWARD),
        "awkward but reachable\n",
    )
    .unwrap();
    std::fs::write(root.join("listing").join(LONG), "long\n").unwrap();
    std::fs::write(root.join("listing/big.bin"), vec![0u8; 300_000]).unwrap();
    std::fs::write(root.join("follow.html"), FOLLOW).unwrap();
    std::fs::write(root.join("layout.html"), LAYOUT).unwrap();
    std::fs::write(root.join("submit.html"), SUBMIT).unwrap();
    root
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            // fs::copy keeps the mode, so the CGI script stays executable.
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Clicks the awkward name's link in the listing, as a person would, and reports the page it
/// landed on.
const FOLLOW: &str = r#"<!DOCTYPE html><title>follow</title>
<iframe id="f" src="/listing/" width="800" height="600"></iframe><pre id="result">waiting</pre>
<script>
let clicked = false;
document.getElementById('f').onload = function () {
  const doc = this.contentDocument;
  if (!clicked) {
    clicked = true;
    const a = [...doc.querySelectorAll('td.name a')].find(a => a.textContent === 'a file & <more> #1?.txt');
    if (!a) { document.getElementById('result').textContent = 'no link'; return; }
    a.click();
  } else {
    document.getElementById('result').textContent =
      'landed on ' + this.contentWindow.location.pathname + ' :: ' + doc.body.textContent;
  }
};
</script>"#;

/// Measures the listing in frames as wide as a desktop and a phone: nothing may stick out
/// sideways, and every row's size and date must stay in their columns.
const LAYOUT: &str = r#"<!DOCTYPE html><title>layout</title>
<iframe id="wide" src="/listing/" width="1280" height="600"></iframe>
<iframe id="narrow" src="/listing/" width="360" height="600"></iframe>
<pre id="result"></pre>
<script>
function check(f) {
  const doc = f.contentDocument, width = doc.documentElement.clientWidth;
  const out = [];
  if (doc.documentElement.scrollWidth > width) out.push('scrolls sideways');
  const rows = [...doc.querySelectorAll('tbody tr')].filter(r => r.querySelector('time'));
  const sizes = new Set(rows.map(r => Math.round(r.cells[1].getBoundingClientRect().right)));
  const dates = new Set(rows.map(r => Math.round(r.cells[2].getBoundingClientRect().left)));
  if (sizes.size !== 1) out.push('size column moves');
  if (dates.size !== 1) out.push('date column moves');
  for (const r of rows) {
    if (r.cells[2].getBoundingClientRect().right > width + 1) out.push('date cut off');
    if (r.cells[2].querySelector('time').getClientRects().length > 1) out.push('date wraps');
  }
  return f.id + ': ' + rows.length + ' rows, ' + (out.length ? [...new Set(out)].join(', ') : 'ok');
}
let loaded = 0;
for (const f of document.querySelectorAll('iframe')) f.onload = function () {
  if (++loaded === 2) document.getElementById('result').textContent =
    check(document.getElementById('wide')) + '\n' + check(document.getElementById('narrow'));
};
</script>"#;

/// The demo's form, filled in and sent as soon as the page loads.
const SUBMIT: &str = r#"<!DOCTYPE html><title>submit</title>
<form method="post" action="/cgi-bin/simple.py?from=browser">
<input name="name" value="Ada &amp; &lt;Lovelace&gt;"><textarea name="message">two
lines</textarea></form>
<script>document.forms[0].submit();</script>"#;

/// The relative links of the listing's entries (its name column), in order.
fn entry_links(dom: &str) -> Vec<String> {
    dom.split("<td class=\"name\"><a href=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .filter(|h| h != "../")
        .collect()
}

#[test]
fn a_person_can_browse_sort_follow_and_post_in_a_real_browser() {
    let Some(bin) = chromium() else {
        eprintln!("SKIPPED browser test: `chromium` is not installed (apt-get install chromium)");
        return;
    };
    let dir = TempDir::new("browser");
    let root = site(&dir);
    let s = Server::start_in(dir, root, &[plugins_dir()], CHAIN_SHIPPED, "");
    let shots = std::env::temp_dir().join("cases-browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    eprintln!("screenshots in {}", shots.display());
    let b = Browser {
        bin,
        profile: TempDir::new("chromium-profile"),
        shots,
        base: format!("http://{}", s.addr),
    };

    // The listing, as a desktop and a phone show it: folders first, natural order.
    let dom = b.open("/listing/", DESKTOP, "listing-desktop");
    assert!(dom.contains("<title>Index of /listing/</title>"), "{dom}");
    let links = entry_links(&dom);
    let at = |h: &str| {
        links
            .iter()
            .position(|l| l == h)
            .unwrap_or_else(|| panic!("{h}: {links:?}"))
    };
    assert_eq!(links[0], "nested/", "{links:?}");
    assert!(at("chapter%209.txt") < at("chapter%2010.txt"), "{links:?}");
    assert!(at("b.txt") < at("Notes.txt") && at("Notes.txt") < at("tea%20%26%20biscuits.txt"));
    assert!(!dom.contains(".hidden"), "{dom}");
    b.open("/listing/", PHONE, "listing-phone");
    let layout = b.open("/layout.html", DESKTOP, "layout");
    assert!(layout.contains("wide: 10 rows, ok"), "{layout}");
    assert!(layout.contains("narrow: 10 rows, ok"), "{layout}");

    // Sorted by size, biggest first, through the header's query string.
    let dom = b.open("/listing/?sort=size&order=desc", DESKTOP, "listing-by-size");
    let links = entry_links(&dom);
    assert_eq!(&links[..2], ["nested/", "big.bin"], "{links:?}");
    assert!(dom.contains("aria-sort=\"descending\""), "{dom}");

    // A link with awkward characters, clicked, lands on that file.
    let dom = b.open("/follow.html", DESKTOP, "follow");
    assert!(
        dom.contains(
            "landed on /listing/a%20file%20%26%20%3Cmore%3E%20%231%3F.txt :: awkward but reachable"
        ),
        "{dom}"
    );

    // A missing page says what happened and where to go.
    let dom = b.open("/listing/no/such page.html", PHONE, "missing");
    assert!(dom.contains("<h1>404 Not Found</h1>"), "{dom}");
    assert!(dom.contains("There is nothing at this address."), "{dom}");
    assert!(
        dom.contains("<code>/listing/no/such page.html</code>"),
        "{dom}"
    );
    assert!(
        dom.contains("<a href=\"/listing/no/\">Parent folder</a>"),
        "{dom}"
    );

    // The CGI form, posted: the script shows what it received, escaped.
    let dom = b.open("/submit.html", DESKTOP, "cgi-post");
    assert!(
        dom.contains("<title>What the script received</title>"),
        "{dom}"
    );
    assert!(
        dom.contains("<th>REQUEST_METHOD</th><td>POST</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<th>QUERY_STRING</th><td>from=browser</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<th>name</th><td>Ada &amp; &lt;Lovelace&gt;</td>"),
        "{dom}"
    );
    assert!(dom.contains("<th>message</th><td>two\nlines</td>"), "{dom}");
}

/// The shipped `config/server.toml` on the shipped `www/`, with the plugins this test run
/// built (the shipped plugin folders may hold an older release build), and without its
/// `user`: the checkout may be in a folder `nobody` cannot read.
fn shipped_site() -> Server {
    let dir = TempDir::new("shipped-site");
    let text = std::fs::read_to_string(workspace().join("config/server.toml")).unwrap();
    let www = workspace().join("www");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("plugin_dirs") {
                format!("plugin_dirs = [{:?}]", plugins_dir().display().to_string())
            } else if l.starts_with("root ") {
                format!("root = {:?}", www.display().to_string())
            } else if l.starts_with("listen ") {
                "listen = \"127.0.0.1:0\"".to_string()
            } else if l.starts_with("user ") {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    dir.write("server.toml", cgi_as_root(&text));
    Server::start_config(dir, www, &[])
}

#[test]
fn the_demo_home_page_shows_the_chain_the_running_server_uses() {
    let Some(bin) = chromium() else {
        eprintln!("SKIPPED browser test: `chromium` is not installed (apt-get install chromium)");
        return;
    };
    let s = shipped_site();
    let b = Browser {
        bin,
        profile: TempDir::new("chromium-profile"),
        shots: std::env::temp_dir().join("cases-browser-screenshots"),
        base: format!("http://{}", s.addr),
    };
    let _ = std::fs::create_dir_all(&b.shots);
    let dom = b.open("/", DESKTOP, "home");
    let live = dom
        .split("<ol id=\"live-chain\">")
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .unwrap_or_default();
    for case in [
        "hidden_files",
        "status",
        "headers",
        "compress",
        "always_fail",
    ] {
        assert!(
            live.contains(&format!("<code>{case}</code>")),
            "{case}: {live}"
        );
    }
    // And a missing page is the site's own 404 page, still a 404.
    let r = s.get("/missing.html");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("Nothing at this address"), "{}", r.text());
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

/// Every browser asks for /favicon.ico on its first page of a site: the demo site has one,
/// so a fresh visit logs no failed load in the console.
#[test]
fn the_demo_site_answers_the_browsers_favicon_request() {
    let s = shipped_site();
    let r = s.get("/favicon.ico");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("image/")),
        "{}",
        r.raw_head
    );
    assert_eq!(&r.body[..4], b"\0\0\x01\0", "an ICO file");
}
