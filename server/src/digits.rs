//! Numbers written as ASCII into a byte buffer, without `fmt` or an allocation: the request
//! path writes a status, a length and an ETag per answer.

use std::net::IpAddr;

/// Append `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    push_radix::<10>(out, n);
}

/// Append `n` in lowercase hexadecimal.
pub fn push_hex(out: &mut Vec<u8>, n: u64) {
    push_radix::<16>(out, n);
}

/// A constant radix, so the division compiles to a multiplication or a shift.
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
    out.extend_from_slice(&tmp[i..]);
}

/// Append an address as `Display` writes it (dotted quad, or RFC 5952 text for IPv6).
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, octet.into());
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
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
        ] {
            let ip: IpAddr = a.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }
}
