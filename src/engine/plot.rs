//! Self-contained SVG plots of census results (no scripts, no external fonts or styles).

use super::census::Landscape;
use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// P_lib (blue) and the continuum weight (red, dashed) against T on the left axis (0..1), the
/// number of minima (grey steps) on the right axis, and T_× (where P_lib = 1/2) as a vertical
/// line with its value.
pub fn landscape_svg(l: &Landscape, title: &str) -> String {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let (t0, t1) = match (l.points.first(), l.points.last()) {
        (Some(a), Some(b)) if b.temperature > a.temperature => (a.temperature, b.temperature),
        (Some(a), _) => (a.temperature - 0.5, a.temperature + 0.5),
        _ => (0.0, 1.0),
    };
    let nmax = l
        .points
        .iter()
        .map(|p| p.n_minima)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * pw;
    let y = |v: f64| TOP + (1.0 - v.clamp(0.0, 1.0)) * ph;
    let yn = |n: f64| TOP + (1.0 - n / nmax) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    // Axes and grid.
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="#ddd"/><text x="{2}" y="{3}" text-anchor="end">{v:.2}</text>"##,
            y(v),
            LEFT + pw,
            LEFT - 6.0,
            y(v) + 4.0
        );
        let n = nmax * v;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" fill="#666">{}</text>"##,
            LEFT + pw + 6.0,
            yn(n) + 4.0,
            n.round()
        );
        let t = t0 + (t1 - t0) * v;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.3}</text>"#,
            x(t),
            TOP + ph + 18.0,
            t
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">temperature T</text>"#,
        LEFT + pw / 2.0,
        H - 18.0
    );
    let _ = write!(
        s,
        r#"<text x="18" y="{0}" text-anchor="middle" transform="rotate(-90 18 {0})">probability</text>"#,
        TOP + ph / 2.0
    );
    let _ = write!(
        s,
        r##"<text x="{0}" y="{1}" text-anchor="middle" fill="#666" transform="rotate(90 {0} {1})">number of minima</text>"##,
        W - 16.0,
        TOP + ph / 2.0
    );
    let line = |vals: Vec<(f64, f64)>| -> String {
        vals.iter()
            .map(|(a, b)| format!("{a:.2},{b:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // n_minima as steps.
    let mut steps = Vec::new();
    for (i, p) in l.points.iter().enumerate() {
        let n = yn(p.n_minima as f64);
        if i > 0 {
            steps.push((x(p.temperature), yn(l.points[i - 1].n_minima as f64)));
        }
        steps.push((x(p.temperature), n));
    }
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#999" stroke-width="1.5"/>"##,
        line(steps)
    );
    let plib: Vec<(f64, f64)> = l
        .points
        .iter()
        .filter(|p| p.library_probability.is_finite())
        .map(|p| (x(p.temperature), y(p.library_probability)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#1f5fbf" stroke-width="2.5"/>"##,
        line(plib)
    );
    let cont: Vec<(f64, f64)> = l
        .points
        .iter()
        .map(|p| (x(p.temperature), y(p.continuum_weight)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#c0392b" stroke-width="2" stroke-dasharray="6 4"/>"##,
        line(cont)
    );
    if let Some(tx) = l.melting_temperature {
        let _ = write!(
            s,
            r##"<line x1="{0}" y1="{TOP}" x2="{0}" y2="{1}" stroke="#2c7a2c" stroke-width="1.5"/><text x="{2}" y="{3}" fill="#2c7a2c">T× = {tx:.4}</text>"##,
            x(tx),
            TOP + ph,
            x(tx) + 5.0,
            TOP + ph - 8.0
        );
    }
    // Legend.
    let lx = LEFT + pw - 190.0;
    let ly = TOP + 10.0;
    let _ = write!(
        s,
        r##"<rect x="{lx}" y="{ly}" width="180" height="62" fill="white" stroke="#ccc"/><line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#1f5fbf" stroke-width="2.5"/><text x="{3}" y="{4}">library probability</text><line x1="{0}" y1="{5}" x2="{2}" y2="{5}" stroke="#c0392b" stroke-width="2" stroke-dasharray="6 4"/><text x="{3}" y="{6}">continuum weight</text><line x1="{0}" y1="{7}" x2="{2}" y2="{7}" stroke="#999" stroke-width="1.5"/><text x="{3}" y="{8}">minima (right axis)</text>"##,
        lx + 8.0,
        ly + 14.0,
        lx + 34.0,
        lx + 40.0,
        ly + 18.0,
        ly + 32.0,
        ly + 36.0,
        ly + 50.0,
        ly + 54.0
    );
    s.push_str("</svg>");
    s
}
