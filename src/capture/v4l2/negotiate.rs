//! Choosing a capture mode from what a camera offers: pure, so it is tested without one.

use crate::capture::convert::PixelFormat;
use std::fmt;

/// One size of one format a camera offers, with its frame rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Mode {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Frame rates offered at this size; empty when the driver does not say.
    pub fps: Vec<f64>,
}

/// What to ask the driver for.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// The rate to request: the slowest offered one that reaches the wanted rate, else the
    /// fastest offered, else (the driver lists none) the wanted rate itself.
    pub fps: f64,
    /// Whether size and rate are what was asked for.
    pub exact: bool,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}x{} @ {} fps",
            self.format.name().to_uppercase(),
            self.width,
            self.height,
            fmt_fps(self.fps)
        )
    }
}

/// `30`, `7.5`, `29.97`.
pub fn fmt_fps(fps: f64) -> String {
    let s = format!("{fps:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Rates within 3% count as reached (29.97 for 30).
fn reaches(offered: f64, wanted: f64) -> bool {
    offered >= wanted * 0.97
}

/// Picks the mode to use: the wanted size first, then a rate that reaches the wanted one, then
/// the format preference order; without the wanted size, the nearest size (the smallest that
/// covers it, else the largest below). `None` when the camera offers none of `prefs`.
pub fn choose(prefs: &[PixelFormat], modes: &[Mode], want: (u32, u32, f64)) -> Option<Choice> {
    let (ww, wh, wfps) = want;
    let want_area = ww as u64 * wh as u64;
    modes
        .iter()
        .filter_map(|m| {
            let rank = prefs.iter().position(|&p| p == m.format)?;
            let exact_size = (m.width, m.height) == (ww, wh);
            let max_fps = m.fps.iter().copied().fold(f64::NAN, f64::max);
            let fps_ok = m.fps.is_empty() || reaches(max_fps, wfps);
            let covers = m.width >= ww && m.height >= wh;
            let area = m.width as u64 * m.height as u64;
            let size_distance = if exact_size {
                0
            } else {
                (u64::from(!covers) << 48) + area.abs_diff(want_area)
            };
            // Faster is better only when the wanted rate is out of reach.
            let speed_penalty = if fps_ok {
                0
            } else {
                u64::MAX - (max_fps * 1000.0) as u64
            };
            let key = (!exact_size, size_distance, !fps_ok, speed_penalty, rank);
            let fps = if m.fps.is_empty() {
                wfps
            } else {
                m.fps
                    .iter()
                    .copied()
                    .filter(|&f| reaches(f, wfps))
                    .fold(f64::NAN, f64::min)
            };
            let fps = if fps.is_nan() { max_fps } else { fps };
            let choice = Choice {
                format: m.format,
                width: m.width,
                height: m.height,
                fps,
                exact: exact_size && fps_ok,
            };
            Some((key, choice))
        })
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PixelFormat::*;

    fn mode(format: PixelFormat, width: u32, height: u32, fps: &[f64]) -> Mode {
        Mode {
            format,
            width,
            height,
            fps: fps.to_vec(),
        }
    }

    /// What a typical USB 2 webcam (C920-like) offers: YUYV is slow at high resolutions,
    /// MJPEG reaches 30 fps everywhere.
    fn webcam() -> Vec<Mode> {
        vec![
            mode(Yuyv, 640, 480, &[30.0, 15.0]),
            mode(Yuyv, 1280, 720, &[10.0, 7.5, 5.0]),
            mode(Yuyv, 1920, 1080, &[5.0]),
            mode(Mjpeg, 640, 480, &[30.0, 15.0]),
            mode(Mjpeg, 1280, 720, &[30.0, 24.0, 15.0]),
            mode(Mjpeg, 1920, 1080, &[30.0, 15.0]),
        ]
    }

    const PREFS: [PixelFormat; 3] = [Yuyv, Mjpeg, Nv12];

    #[test]
    fn preferred_format_when_it_keeps_up() {
        let c = choose(&PREFS, &webcam(), (640, 480, 30.0)).unwrap();
        assert_eq!(c.to_string(), "YUYV 640x480 @ 30 fps");
        assert!(c.exact);
    }

    #[test]
    fn falls_down_the_list_for_the_rate() {
        let c = choose(&PREFS, &webcam(), (1280, 720, 30.0)).unwrap();
        assert_eq!(c.to_string(), "MJPEG 1280x720 @ 30 fps");
        // At 10 fps YUYV is enough again; the slowest rate that reaches it is asked for.
        let c = choose(&PREFS, &webcam(), (1280, 720, 10.0)).unwrap();
        assert_eq!(c.to_string(), "YUYV 1280x720 @ 10 fps");
        let c = choose(&PREFS, &webcam(), (1280, 720, 20.0)).unwrap();
        assert_eq!(c.to_string(), "MJPEG 1280x720 @ 24 fps");
    }

    #[test]
    fn only_listed_formats_and_the_fastest_when_none_keeps_up() {
        let c = choose(&[Yuyv], &webcam(), (1280, 720, 30.0)).unwrap();
        assert_eq!(c.to_string(), "YUYV 1280x720 @ 10 fps");
        assert!(!c.exact);
        assert_eq!(choose(&[Nv12], &webcam(), (1280, 720, 30.0)), None);
    }

    #[test]
    fn nearest_size_when_the_wanted_one_is_missing() {
        // 1024x768 is not offered: the smallest size covering it wins.
        let c = choose(&PREFS, &webcam(), (1024, 768, 30.0)).unwrap();
        assert_eq!(c.to_string(), "MJPEG 1920x1080 @ 30 fps");
        assert!(!c.exact);
        // Nothing covers 4K: the largest below.
        let c = choose(&PREFS, &webcam(), (3840, 2160, 30.0)).unwrap();
        assert_eq!((c.width, c.height), (1920, 1080));
    }

    #[test]
    fn unknown_rates_and_ntsc_rates() {
        let modes = [mode(Nv12, 1280, 720, &[]), mode(Yuyv, 1280, 720, &[29.97])];
        let c = choose(&PREFS, &modes, (1280, 720, 30.0)).unwrap();
        assert_eq!(c.to_string(), "YUYV 1280x720 @ 29.97 fps");
        let c = choose(&[Nv12], &modes, (1280, 720, 25.0)).unwrap();
        assert_eq!(c.fps, 25.0);
        assert!(c.exact);
        assert_eq!(fmt_fps(7.5), "7.5");
    }
}
