//! The report's PNG plots: cost per cell against N (log axes, one line per library) and the
//! ratio to TinyBase per workload against its target. Text needs a TrueType font, read at run time
//! from the system (Debian's fonts-dejavu-core), so none is committed.

use crate::report::{target_rows, Results, NAMES, PER_CELL};
use plotters::prelude::*;
use std::path::Path;

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// One library's line: (colour index, name, points).
type Line = (usize, &'static str, Vec<(f64, f64)>);

const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const COLORS: [RGBColor; 5] =
    [RGBColor(214, 39, 40), RGBColor(31, 119, 180), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14)];

/// Registers a system sans-serif font for plotters, installing Debian's fonts-dejavu-core when
/// none is there and we are root.
fn load_font() -> Result<(), String> {
    let find = || FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok());
    let bytes = match find() {
        Some(b) => b,
        // SAFETY: geteuid has no preconditions.
        None if unsafe { libc::geteuid() } == 0 && Path::new("/usr/bin/apt-get").exists() => {
            eprintln!("tinybase-bench: no TrueType font found; installing fonts-dejavu-core for the plots' text");
            let _ = std::process::Command::new("apt-get")
                .args(["install", "-y", "-q", "fonts-dejavu-core"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(std::process::Stdio::null())
                .status();
            find().ok_or("no TrueType font (install fonts-dejavu-core)")?
        }
        None => return Err(format!("no TrueType font in {} (install fonts-dejavu-core)", FONT_PATHS.join(", "))),
    };
    // plotters keeps the font for the whole process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| "the font file is not a TrueType font".to_string())
}

/// Draws the plots into `out`: (file name, caption) each, or one ("", why not) entry.
pub fn draw(r: &Results, out: &Path) -> Vec<(String, String)> {
    if let Err(e) = load_font() {
        eprintln!("tinybase-bench: plots not drawn: {e}");
        return vec![(String::new(), format!("Plots not drawn: {e}."))];
    }
    let mut plots = Vec::new();
    let mut attempt = |file: &str, caption: String, f: &dyn Fn(&Path) -> Drawn| match f(&out.join(file)) {
        Ok(()) => plots.push((file.to_string(), caption)),
        Err(e) => {
            eprintln!("tinybase-bench: {file}: {e}");
            plots.push((String::new(), format!("{file} not drawn: {e}.")));
        }
    };
    attempt("scale.png", "Cost per cell against N (log axes; medians)".into(), &|p| scale(r, p));
    let n = r.reference_n();
    attempt("ratios.png", format!("Ratio to TinyBase at N = {n} (W8: 1,549 stores), bars, against the target (line)"), &|p| ratios(r, p));
    plots
}

fn scale(r: &Results, path: &Path) -> Drawn {
    let root = BitMapBackend::new(path, (1500, 950)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("Cost per cell against N (medians; flat = linear growth)", ("sans-serif", 26))?;
    let (lo, hi) = (*r.sizes.first().ok_or("no sizes")? as f64, *r.sizes.last().ok_or("no sizes")? as f64);
    for (panel, (key, label)) in root.split_evenly((2, 3)).iter().zip(PER_CELL) {
        let lines: Vec<Line> = NAMES
            .iter()
            .enumerate()
            .map(|(i, (l, name))| {
                let pts = r.sizes.iter().filter_map(|&n| r.per_cell(l, key, n).map(|s| (n as f64, s.median))).collect();
                (i, *name, pts)
            })
            .filter(|(_, _, pts): &Line| !pts.is_empty())
            .collect();
        let ys = lines.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.1)).filter(|y| *y > 0.0);
        let (ymin, ymax) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
        if ymin > ymax {
            panel.titled(label, ("sans-serif", 20))?;
            continue;
        }
        let mut chart = ChartBuilder::on(panel)
            .caption(label, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((lo * 0.7..hi * 1.4).log_scale(), (ymin / 2.0..ymax * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("N (cells)")
            .x_label_formatter(&|x| size_label(*x))
            .light_line_style(WHITE)
            .y_label_formatter(&|y| crate::report::fmt(*y))
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, name, pts) in lines {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn ratios(r: &Results, path: &Path) -> Drawn {
    let rows: Vec<_> = target_rows(r).into_iter().filter(|row| row.ratio.is_finite()).collect();
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    if rows.is_empty() {
        root.titled("No ratio to TinyBase measured (TinyBase did not run)", ("sans-serif", 22))?;
        root.present()?;
        return Ok(());
    }
    let labels: Vec<String> = rows.iter().map(|row| format!("{} {}", row.workload, row.unit)).collect();
    let top = rows.iter().map(|row| row.ratio.max(row.want)).fold(1.0, f64::max) * 2.0;
    let k = rows.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("This library against TinyBase at N = {} (bars; line = target)", r.reference_n()), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..k - 0.5, (0.5..top).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len() * 4)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("ratio (higher is better)")
        .y_label_formatter(&|y| format!("{}x", crate::report::fmt(*y)))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, row) in rows.iter().enumerate() {
        let x = i as f64;
        let color = match row.met {
            Some(true) => RGBColor(44, 160, 44),
            Some(false) => RGBColor(214, 39, 40),
            None => RGBColor(127, 127, 127),
        };
        chart.draw_series(std::iter::once(Rectangle::new([(x - 0.3, 0.5), (x + 0.3, row.ratio)], color.filled())))?;
        chart.draw_series(std::iter::once(Text::new(format!("{:.1}x", row.ratio), (x - 0.2, row.ratio * 1.15), ("sans-serif", 14))))?;
        if row.want > 0.0 {
            let t = row.want;
            chart.draw_series(std::iter::once(PathElement::new(vec![(x - 0.42, t), (x + 0.42, t)], BLACK.stroke_width(3))))?;
        }
    }
    root.present()?;
    Ok(())
}

/// "10k", "1M"... at powers of ten, nothing between (a log axis has many key points).
fn size_label(x: f64) -> String {
    let e = x.log10();
    if (e - e.round()).abs() > 1e-6 {
        return String::new();
    }
    match e.round() as i32 {
        e @ 0..=2 => format!("{}", 10f64.powi(e)),
        e @ 3..=5 => format!("{}k", 10f64.powi(e - 3)),
        e @ 6..=8 => format!("{}M", 10f64.powi(e - 6)),
        e => format!("1e{e}"),
    }
}
