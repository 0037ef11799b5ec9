//! Numbers written as ASCII into a byte buffer, without `fmt` or an allocation: the request
//! path writes a status, a length and an ETag per answer.

use std::net::IpAddr;

/// Append `n` in decimal: itoa (serde_json's), two digits a step from a table, where a
/// digit a division cost about 100 instructions for a status or a length.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Append `n` in lowercase hexadecimal.
pub fn push_hex(out: &mut Vec<u8>, n: u64) {
    push_radix::<16>(out, n);
}

/// A constant radix, so the division compiles to a multiplication or a shift. Short
/// numbers are pushed byte by byte, not through `memcpy`.
fn push_radix<const RADIX: u64>(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[(n % RADIX) as usize];
        n /= RADIX;
        if n == 0 {
            break;
        }
    }
    let digits = &tmp[i..];
    if digits.len() <= 4 {
        out.reserve(digits.len());
        digits.iter().for_each(|&d| out.push(d));
    } else {
        out.extend_from_slice(digits);
    }
}

/// An address as `Display` writes it, held inline (no allocation): dotted quad, or RFC 5952
/// text for IPv6 (at most 45 bytes, `ffff:...:255.255.255.255`).
pub struct IpText {
    bytes: [u8; 46],
    len: u8,
}

impl IpText {
    const EMPTY: IpText = IpText {
        bytes: [0; 46],
        len: 0,
    };

    pub fn of(ip: IpAddr) -> IpText {
        let mut t = IpText::EMPTY;
        match ip {
            IpAddr::V4(v4) => t.push_v4(v4.octets()),
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut cur = std::io::Cursor::new(&mut t.bytes[..]);
                let _ = write!(cur, "{v6}");
                t.len = cur.position() as u8;
            }
        }
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Four octets, each with its digits written straight in (no division loop).
    fn push_v4(&mut self, octets: [u8; 4]) {
        for (i, o) in octets.into_iter().enumerate() {
            if i > 0 {
                self.put(b'.');
            }
            if o >= 100 {
                self.put(b'0' + o / 100);
            }
            if o >= 10 {
                self.put(b'0' + o / 10 % 10);
            }
            self.put(b'0' + o % 10);
        }
    }

    fn put(&mut self, b: u8) {
        self.bytes[self.len as usize] = b;
        self.len += 1;
    }
}

/// Addresses this thread wrote last, with their text: a connection's requests name the
/// same client and server address again and again.
type Recent = [(Option<IpAddr>, IpText); 2];

thread_local! {
    static RECENT: std::cell::RefCell<(Recent, usize)> = const {
        std::cell::RefCell::new(([(None, IpText::EMPTY), (None, IpText::EMPTY)], 0))
    };
}

/// Lend the text of `ip` to `f`, written once while it stays among the recent two.
pub fn with_ip_text<R>(ip: IpAddr, f: impl FnOnce(&[u8]) -> R) -> R {
    RECENT.with_borrow_mut(|(recent, next)| {
        let i = match recent.iter().position(|(k, _)| *k == Some(ip)) {
            Some(i) => i,
            None => {
                let i = *next;
                *next = 1 - i;
                recent[i] = (Some(ip), IpText::of(ip));
                i
            }
        };
        f(recent[i].1.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_display_writes_them() {
        for n in [0u64, 7, 10, 255, 1024, 65535, u64::MAX] {
            let (mut d, mut h) = (Vec::new(), Vec::new());
            push_decimal(&mut d, n);
            push_hex(&mut h, n);
            assert_eq!(d, n.to_string().as_bytes());
            assert_eq!(h, format!("{n:x}").as_bytes());
        }
    }

    #[test]
    fn addresses_read_as_display_writes_them() {
        for a in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.2.30.4",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:1.2.3.4",
            "::ffff:255.255.255.255",
            "1.20.100.9",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(IpText::of(ip).as_bytes(), ip.to_string().as_bytes());
            with_ip_text(ip, |t| assert_eq!(t, ip.to_string().as_bytes()));
            with_ip_text(ip, |t| assert_eq!(t, ip.to_string().as_bytes()));
        }
    }
}
