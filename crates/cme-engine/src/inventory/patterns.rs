//! Host patterns as Ansible's inventory sources write them: `web-1:2222` (a port after
//! the name), `www[01:50].example.com` (a numeric range, zero-padded as its start is),
//! `db-[a:f]` (letters), `node[0:20:5]` (a stride), several ranges in one name.

use super::MAX_HOSTS;

/// One host a pattern names: its inventory name and the port the pattern gave, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternHost {
    pub name: String,
    pub port: Option<u16>,
}

/// Expands `pattern` into its hosts, refusing malformed ranges and patterns naming more
/// than [`MAX_HOSTS`] hosts.
pub(super) fn expand(pattern: &str) -> Result<Vec<PatternHost>, String> {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return Err("a host pattern is empty".into());
    }
    let (body, port) = split_port(pattern)?;
    // `[2001:db8::1]:22`: an IPv6 address in brackets, so that a port may follow.
    if let Some(address) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']'))
        && address.matches(':').count() >= 2
        && address.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    {
        return Ok(vec![PatternHost { name: address.to_string(), port }]);
    }
    let mut names = vec![String::new()];
    let mut rest = body;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|i| open + i)
            .ok_or_else(|| format!("host pattern {pattern:?}: '[' without ']'"))?;
        let range = expand_range(&rest[open + 1..close]).map_err(|why| format!("host pattern {pattern:?}: {why}"))?;
        if names.len().saturating_mul(range.len()) > MAX_HOSTS {
            return Err(format!("host pattern {pattern:?} names more than {MAX_HOSTS} hosts"));
        }
        let prefix = &rest[..open];
        names = names.iter().flat_map(|n| range.iter().map(move |r| format!("{n}{prefix}{r}"))).collect();
        rest = &rest[close + 1..];
    }
    if rest.contains(']') {
        return Err(format!("host pattern {pattern:?}: ']' without '['"));
    }
    Ok(names.into_iter().map(|n| PatternHost { name: format!("{n}{rest}"), port }).collect())
}

/// Splits `name:port`; a colon inside a range's brackets, or in an IPv6 address (more
/// than one colon outside brackets), is not a port.
fn split_port(pattern: &str) -> Result<(&str, Option<u16>), String> {
    let mut depth = 0i32;
    let mut colons = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [at] => {
            let port = &pattern[at + 1..];
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("host pattern {pattern:?}: {port:?} after ':' is not a port"))?;
            Ok((&pattern[..*at], Some(port)))
        }
        _ => Ok((pattern, None)),
    }
}

/// `01:50`, `1:50:5`, `a:f`: the values, as text.
fn expand_range(range: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, stride) = match parts.as_slice() {
        [start, end] => (*start, *end, "1"),
        [start, end, stride] => (*start, *end, *stride),
        _ => return Err(format!("[{range}] is not a range (start:end or start:end:stride)")),
    };
    let stride: usize = stride
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("[{range}]: the stride {stride:?} is not a positive number"))?;
    let too_many = || format!("[{range}] names more than {MAX_HOSTS} hosts");
    if let (Ok(first), Ok(last)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if first > last {
            return Err(format!("[{range}]: the start is after the end"));
        }
        if (last - first) / stride as u64 >= MAX_HOSTS as u64 {
            return Err(too_many());
        }
        let width = if start.len() > 1 && start.starts_with('0') { start.len() } else { 0 };
        return Ok((first..=last).step_by(stride).map(|n| format!("{n:0width$}")).collect());
    }
    let letter = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
            _ => None,
        }
    };
    match (letter(start), letter(end)) {
        (Some(first), Some(last)) if first <= last => Ok((first..=last).step_by(stride).map(String::from).collect()),
        (Some(_), Some(_)) => Err(format!("[{range}]: the start is after the end")),
        _ => Err(format!("[{range}]: a range is of numbers or of single letters")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pattern: &str) -> Vec<String> {
        expand(pattern).unwrap().into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn numeric_ranges_keep_the_starts_padding() {
        let www = names("www[01:50].example.com");
        assert_eq!(www.len(), 50);
        assert_eq!((www[0].as_str(), www[49].as_str()), ("www01.example.com", "www50.example.com"));
        assert_eq!(names("n[1:3]"), ["n1", "n2", "n3"]);
    }

    #[test]
    fn letters_strides_and_several_ranges_expand() {
        assert_eq!(names("db-[a:c]"), ["db-a", "db-b", "db-c"]);
        assert_eq!(names("node[0:20:10]"), ["node0", "node10", "node20"]);
        assert_eq!(names("r[1:2]-[a:b]"), ["r1-a", "r1-b", "r2-a", "r2-b"]);
    }

    #[test]
    fn a_port_after_the_name_is_the_port_but_not_inside_brackets_or_ipv6() {
        assert_eq!(expand("web-2:2222").unwrap(), [PatternHost { name: "web-2".into(), port: Some(2222) }]);
        assert_eq!(expand("w[1:2]:2200").unwrap()[1], PatternHost { name: "w2".into(), port: Some(2200) });
        assert_eq!(expand("fe80::1").unwrap()[0].port, None);
        assert_eq!(
            expand("[2001:db8::1]:2222").unwrap(),
            [PatternHost { name: "2001:db8::1".into(), port: Some(2222) }]
        );
        assert_eq!(expand("[2001:db8::1]").unwrap()[0].name, "2001:db8::1");
        assert!(expand("web:http").unwrap_err().contains("not a port"));
    }

    #[test]
    fn malformed_and_huge_ranges_are_refused() {
        assert!(expand("w[1:").unwrap_err().contains("without ']'"));
        assert!(expand("w[5:1]").unwrap_err().contains("start is after"));
        assert!(expand("w[1:5:0]").unwrap_err().contains("stride"));
        assert!(expand("w[x]").unwrap_err().contains("not a range"));
        assert!(expand("w[0:99999]").unwrap_err().contains("more than"));
        assert!(expand("w[0:999][0:999]").unwrap_err().contains("more than"));
        assert!(expand("w[0:18446744073709551615]").unwrap_err().contains("more than"));
    }
}
