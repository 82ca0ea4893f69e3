//! Column alignment like Go's `text/tabwriter` as docker uses it
//! (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): minimum width 10, padding 3.

pub const MIN_WIDTH: usize = 10;
pub const PADDING: usize = 3;

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Aligns tab-separated lines. A line's last cell (not followed by a tab) is not padded.
pub fn align(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in &rows {
        // only tab-terminated cells take part in alignment
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[i] = widths[i].max(width(c) + PADDING);
        }
    }
    for w in widths.iter_mut() {
        if *w < MIN_WIDTH {
            *w = MIN_WIDTH;
        }
    }
    let mut out = String::new();
    for (li, r) in rows.iter().enumerate() {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - width(c)));
            }
        }
        if li + 1 < rows.len() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_header() {
        let h = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n";
        assert_eq!(
            align(h),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn images_rows() {
        let t = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t1234567890ab\t2 weeks ago\t4.26MB\n";
        assert_eq!(
            align(t),
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    1234567890ab   2 weeks ago   4.26MB\n"
        );
    }

    #[test]
    fn unicode_width() {
        let t = "a…\tb\nxx\ty";
        assert_eq!(align(t), "a…        b\nxx        y");
    }
}
