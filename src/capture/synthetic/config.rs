//! The `synthetic` section of the source configuration.

use crate::config::{check_range, ConfigError};
use serde::Deserialize;

/// How the synthetic road-scene generator runs. Keys are relative to the section the lead
/// composes it into (e.g. `source.synthetic`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Seed of the whole stream: the same seed (and the same other settings) gives the same
    /// bytes, frame for frame. Default 1.
    pub seed: u64,
    /// Frame width in pixels (64..=7680). Default 1280.
    pub width: u32,
    /// Frame height in pixels (48..=4320). Default 720.
    pub height: u32,
    /// Frames per second of simulated time (1..=240). Default 30.
    pub fps: f32,
    /// `true`: deliver frames at `fps` like a camera; `false`: as fast as they render. The frames
    /// are the same either way. Default true.
    pub realtime: bool,
    /// End the stream after this many frames; absent: endless. Default absent.
    pub max_frames: Option<u64>,
    /// Instances with fewer visible pixels are drawn but left out of the ground truth (too small
    /// for any detector to find; 1..=10000). Default 12.
    pub min_instance_px: u32,
    /// How often the injected events happen.
    pub events: EventRates,
    /// Conditions to force instead of drawing them at random for each drive.
    pub conditions: ConditionOverrides,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            width: 1280,
            height: 720,
            fps: 30.0,
            realtime: true,
            max_frames: None,
            min_instance_px: 12,
            events: EventRates::default(),
            conditions: ConditionOverrides::default(),
        }
    }
}

/// Rates of the injected events, per hour of simulated time (each 0..=3600), and the lengths of
/// the stretch events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventRates {
    /// An animal (the rare class) on or beside the road. Default 18 (three per 10 minutes).
    pub rare_class_per_hour: f32,
    /// A pedestrian behind a parked vehicle, partly hidden. Default 36.
    pub occlusion_per_hour: f32,
    /// A crowd crossing in front of the stopped vehicle. Default 24.
    pub crowd_per_hour: f32,
    /// A stretch of unfamiliar scenery (snow, desert, industrial). Default 6.
    pub novel_scenery_per_hour: f32,
    /// A long stretch where nothing new appears. Default 15.
    pub boring_per_hour: f32,
    /// Length of a novel-scenery stretch in seconds (5..=3600). Default 40.
    pub novel_scenery_s: f32,
    /// Length of a boring stretch in seconds (5..=3600). Default 90.
    pub boring_s: f32,
}

impl Default for EventRates {
    fn default() -> Self {
        Self {
            rare_class_per_hour: 18.0,
            occlusion_per_hour: 36.0,
            crowd_per_hour: 24.0,
            novel_scenery_per_hour: 6.0,
            boring_per_hour: 15.0,
            novel_scenery_s: 40.0,
            boring_s: 90.0,
        }
    }
}

impl EventRates {
    /// No injected events at all (drives, traffic and conditions still vary).
    pub fn none() -> Self {
        Self {
            rare_class_per_hour: 0.0,
            occlusion_per_hour: 0.0,
            crowd_per_hour: 0.0,
            novel_scenery_per_hour: 0.0,
            boring_per_hour: 0.0,
            ..Self::default()
        }
    }
}

/// Conditions forced for every drive; an absent field is drawn at random per drive.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditionOverrides {
    pub time_of_day: Option<TimeOfDay>,
    pub weather: Option<Weather>,
    pub environment: Option<Environment>,
    /// Force a tunnel into every drive (`true`) or keep tunnels out (`false`).
    pub tunnel: Option<bool>,
    /// Force the zoom motion blur on or off.
    pub motion_blur: Option<bool>,
    /// Force the sensor noise on or off.
    pub sensor_noise: Option<bool>,
    /// Allow (`true`) or forbid (`false`) stops at traffic lights; stops for pedestrians and
    /// animals on the road always happen.
    pub stops: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeOfDay {
    Day,
    Dusk,
    Night,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weather {
    Clear,
    Fog,
    Rain,
}

/// The usual kinds of road a drive takes place on (novel scenery comes on top of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Buildings, parked cars, sidewalks, crosswalks.
    Urban,
    /// Houses and trees, fewer pedestrians.
    Suburban,
    /// A wider road through fields and trees, faster and sparser traffic.
    Rural,
}

impl SyntheticConfig {
    /// Checks every value; keys are relative to this section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("width", self.width, 64, 7680)?;
        check_range("height", self.height, 48, 4320)?;
        if !self.fps.is_finite() {
            return Err(ConfigError::new("fps", "must be a finite number"));
        }
        check_range("fps", self.fps, 1.0, 240.0)?;
        check_range("min_instance_px", self.min_instance_px, 1, 10_000)?;
        let e = &self.events;
        for (key, v) in [
            ("rare_class_per_hour", e.rare_class_per_hour),
            ("occlusion_per_hour", e.occlusion_per_hour),
            ("crowd_per_hour", e.crowd_per_hour),
            ("novel_scenery_per_hour", e.novel_scenery_per_hour),
            ("boring_per_hour", e.boring_per_hour),
        ] {
            check_finite_range(key, v, 0.0, 3600.0).map_err(|e| e.within("events"))?;
        }
        for (key, v) in [
            ("novel_scenery_s", e.novel_scenery_s),
            ("boring_s", e.boring_s),
        ] {
            check_finite_range(key, v, 5.0, 3600.0).map_err(|e| e.within("events"))?;
        }
        Ok(())
    }
}

fn check_finite_range(key: &str, v: f32, lo: f32, hi: f32) -> Result<(), ConfigError> {
    if !v.is_finite() {
        return Err(ConfigError::new(
            key,
            format!("must be a finite number, got {v}"),
        ));
    }
    check_range(key, v, lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = SyntheticConfig::default();
        c.validate().unwrap();
        assert_eq!((c.width, c.height, c.fps), (1280, 720, 30.0));
        assert!(c.realtime);
    }

    #[test]
    fn parses_toml_and_rejects_unknown_keys() {
        let c: SyntheticConfig = toml::from_str(
            "seed = 9\nwidth = 640\nheight = 360\nrealtime = false\n\
             [events]\nrare_class_per_hour = 60\n[conditions]\ntime_of_day = \"night\"\nweather = \"fog\"\n",
        )
        .unwrap();
        assert_eq!(c.seed, 9);
        assert_eq!(c.events.rare_class_per_hour, 60.0);
        assert_eq!(
            c.events.crowd_per_hour,
            EventRates::default().crowd_per_hour
        );
        assert_eq!(c.conditions.time_of_day, Some(TimeOfDay::Night));
        assert_eq!(c.conditions.weather, Some(Weather::Fog));
        assert!(toml::from_str::<SyntheticConfig>("widht = 3").is_err());
        assert!(toml::from_str::<SyntheticConfig>("[conditions]\nweather = \"hail\"").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let c = SyntheticConfig {
            width: 10,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "width");
        let mut c = SyntheticConfig::default();
        c.events.crowd_per_hour = -1.0;
        assert_eq!(c.validate().unwrap_err().key, "events.crowd_per_hour");
        let c = SyntheticConfig {
            fps: f32::NAN,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "fps");
        let mut c = SyntheticConfig::default();
        c.events.boring_s = 1.0;
        assert_eq!(c.validate().unwrap_err().key, "events.boring_s");
    }
}
