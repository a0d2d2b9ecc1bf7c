//! The loss curves of a run as a PNG (plotters): the training loss of every step, its moving
//! average, and the validation loss where it was measured.
//!
//! Text needs a font, which plotters' bitmap backend takes from the caller: the system's DejaVu
//! Sans (Debian's `fonts-dejavu-core`) or any `.ttf` in `IBERT_PLOT_FONT`; without one the
//! curves are drawn without labels.

use std::path::Path;

use plotters::prelude::*;

/// One point per step.
pub struct Curves<'a> {
    pub training: &'a [(u64, f64)],
    pub validation: &'a [(u64, f64)],
    pub title: &'a str,
}

const FONT_PATHS: [&str; 3] =
    ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];

/// Registers a system font once; whether text can be drawn.
fn font_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let chosen = std::env::var("IBERT_PLOT_FONT").ok().into_iter().chain(FONT_PATHS.iter().map(|p| p.to_string()));
        for path in chosen {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Writes the curves to `path` (a temporary file beside it, then renamed).
pub fn write_png(curves: &Curves, path: &Path) -> Result<(), String> {
    // The image encoder picks the format by extension, so the temporary name ends in `.png` too.
    let staging = path.with_file_name(format!(".{}.partial.png", path.file_name().unwrap_or_default().to_string_lossy()));
    draw(curves, &staging).map_err(|error| format!("drawing {}: {error}", path.display()))?;
    std::fs::rename(&staging, path).map_err(|error| format!("renaming {}: {error}", path.display()))
}

fn draw(curves: &Curves, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = font_ready();
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let all = curves.training.iter().chain(curves.validation);
    let last_step = all.clone().map(|(s, _)| *s).max().unwrap_or(1).max(1);
    let top = all.map(|(_, l)| *l).filter(|l| l.is_finite()).fold(0.0, f64::max).max(1e-3) * 1.05;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(16);
    if text {
        builder.caption(curves.title, ("sans-serif", 22)).x_label_area_size(40).y_label_area_size(56);
    }
    let mut chart = builder.build_cartesian_2d(0u64..last_step, 0.0..top)?;
    if text {
        chart.configure_mesh().x_desc("step").y_desc("loss (nats per answer token)").draw()?;
    } else {
        chart.configure_mesh().disable_x_mesh().disable_y_mesh().x_labels(0).y_labels(0).draw()?;
    }
    let light = RGBColor(150, 180, 230);
    chart
        .draw_series(LineSeries::new(curves.training.iter().copied(), &light))?
        .label("training (each step)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], light));
    let smoothed = moving_average(curves.training, 20);
    chart
        .draw_series(LineSeries::new(smoothed, BLUE.stroke_width(2)))?
        .label("training (mean of 20 steps)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(curves.validation.iter().copied(), RED.stroke_width(2)).point_size(3))?
        .label("validation")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    if text {
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}

fn moving_average(points: &[(u64, f64)], window: usize) -> Vec<(u64, f64)> {
    (0..points.len())
        .map(|i| {
            let from = i.saturating_sub(window - 1);
            let slice = &points[from..=i];
            (points[i].0, slice.iter().map(|(_, l)| l).sum::<f64>() / slice.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curves_are_a_png_of_the_asked_size() {
        let dir = tempfile::tempdir().unwrap();
        let training: Vec<(u64, f64)> = (1..=50).map(|s| (s, 3.0 / (1.0 + s as f64 / 10.0))).collect();
        let validation = [(25, 1.4), (50, 1.1)];
        let path = dir.path().join("loss.png");
        write_png(&Curves { training: &training, validation: &validation, title: "test" }, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, after the signature and the chunk's length and tag.
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 960);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 540);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
