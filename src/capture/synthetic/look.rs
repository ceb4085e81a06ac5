//! What a scene looks like: the palette of each kind of region and the light of each condition
//! (time of day, weather, tunnel), applied when a colour is painted.
//!
//! Shading happens per primitive, not per pixel: an object at distance `z` gets its colours
//! multiplied by the ambient light (plus the ego's headlights at night) and blended toward the
//! fog colour by `1 - exp(-z * density)`, once, before its polygons are filled.

use super::config::{TimeOfDay, Weather};

/// The kind of place the road runs through at some point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Region {
    Urban,
    Suburban,
    Rural,
    /// Novel scenery: snow on the ground, conifers, white roofs.
    Snow,
    /// Novel scenery: sand, rocks and cacti, adobe houses.
    Desert,
    /// Novel scenery: warehouses, tanks and chimneys in rust and grey.
    Industrial,
}

/// Colours of one kind of region.
pub(crate) struct Palette {
    pub asphalt: [u8; 3],
    pub asphalt_amp: i32,
    pub sidewalk: [u8; 3],
    pub curb: [u8; 3],
    pub verge: [u8; 3],
    pub verge_amp: i32,
    pub marking: [u8; 3],
    pub facades: &'static [[u8; 3]],
    pub roofs: &'static [[u8; 3]],
    pub crowns: &'static [[u8; 3]],
    pub trunk: [u8; 3],
    pub skyline: [u8; 3],
}

const URBAN: Palette = Palette {
    asphalt: [86, 87, 91],
    asphalt_amp: 26,
    sidewalk: [152, 149, 142],
    curb: [182, 180, 174],
    verge: [92, 112, 64],
    verge_amp: 50,
    marking: [228, 228, 222],
    facades: &[
        [172, 160, 148],
        [150, 104, 84],
        [204, 198, 182],
        [118, 124, 132],
        [188, 170, 138],
        [132, 96, 78],
        [212, 208, 202],
        [96, 104, 112],
    ],
    roofs: &[[80, 80, 84]],
    crowns: &[[52, 96, 42], [72, 112, 46], [42, 82, 36]],
    trunk: [88, 66, 48],
    skyline: [128, 136, 150],
};

const SUBURBAN: Palette = Palette {
    asphalt: [94, 95, 98],
    asphalt_amp: 24,
    sidewalk: [168, 165, 158],
    curb: [186, 184, 178],
    verge: [82, 126, 58],
    verge_amp: 46,
    marking: [226, 226, 220],
    facades: &[
        [222, 216, 200],
        [202, 182, 150],
        [172, 192, 204],
        [232, 226, 214],
        [164, 122, 92],
        [196, 206, 180],
    ],
    roofs: &[[122, 62, 50], [78, 80, 86], [142, 84, 62], [60, 62, 70]],
    crowns: &[
        [58, 100, 40],
        [78, 116, 48],
        [46, 86, 38],
        [98, 122, 52],
        [150, 112, 44],
    ],
    trunk: [92, 68, 48],
    skyline: [104, 126, 112],
};

const RURAL: Palette = Palette {
    asphalt: [80, 82, 86],
    asphalt_amp: 28,
    sidewalk: [120, 118, 108],
    curb: [150, 148, 140],
    verge: [96, 130, 60],
    verge_amp: 56,
    marking: [230, 230, 224],
    facades: &[[170, 150, 120], [150, 70, 56], [200, 196, 186]],
    roofs: &[[90, 60, 50], [70, 72, 78]],
    crowns: &[[48, 92, 38], [66, 108, 44], [40, 76, 34], [88, 116, 48]],
    trunk: [84, 62, 44],
    skyline: [92, 118, 104],
};

const SNOW: Palette = Palette {
    asphalt: [150, 152, 158],
    asphalt_amp: 40,
    sidewalk: [226, 229, 234],
    curb: [236, 238, 242],
    verge: [238, 241, 246],
    verge_amp: 18,
    marking: [196, 198, 204],
    facades: &[
        [150, 60, 50],
        [190, 160, 120],
        [120, 130, 150],
        [210, 205, 196],
    ],
    roofs: &[[244, 246, 250]],
    crowns: &[[34, 62, 44], [28, 54, 38]],
    trunk: [70, 52, 40],
    skyline: [196, 204, 216],
};

const DESERT: Palette = Palette {
    asphalt: [118, 108, 98],
    asphalt_amp: 26,
    sidewalk: [204, 178, 132],
    curb: [190, 170, 130],
    verge: [218, 186, 134],
    verge_amp: 40,
    marking: [236, 220, 170],
    facades: &[[204, 162, 112], [190, 146, 98], [222, 190, 146]],
    roofs: &[[176, 130, 86]],
    crowns: &[[92, 120, 60], [110, 130, 70]],
    trunk: [120, 96, 66],
    skyline: [196, 150, 112],
};

const INDUSTRIAL: Palette = Palette {
    asphalt: [74, 74, 72],
    asphalt_amp: 30,
    sidewalk: [128, 126, 118],
    curb: [150, 148, 140],
    verge: [118, 112, 96],
    verge_amp: 44,
    marking: [214, 200, 120],
    facades: &[
        [140, 140, 134],
        [112, 92, 76],
        [160, 164, 170],
        [130, 70, 48],
        [92, 100, 96],
    ],
    roofs: &[[90, 90, 88]],
    crowns: &[[70, 90, 50]],
    trunk: [80, 64, 50],
    skyline: [150, 146, 136],
};

impl Region {
    pub fn palette(self) -> &'static Palette {
        match self {
            Region::Urban => &URBAN,
            Region::Suburban => &SUBURBAN,
            Region::Rural => &RURAL,
            Region::Snow => &SNOW,
            Region::Desert => &DESERT,
            Region::Industrial => &INDUSTRIAL,
        }
    }
}

/// The light of one frame.
#[derive(Debug, Clone)]
pub(crate) struct Look {
    pub sky_top: [u8; 3],
    pub sky_horizon: [u8; 3],
    /// Cloud colour and cover (0 none .. 1 overcast).
    pub cloud: [u8; 3],
    pub cloud_cover: f32,
    /// Multiplier of surface colours, per channel.
    pub ambient: [f32; 3],
    pub fog_color: [f32; 3],
    /// Extinction per metre of the fog (or haze).
    pub fog_density: f32,
    /// Strength of the ego's headlights on what lies ahead (0 by day).
    pub headlights: f32,
    /// Vehicles run with their lights on.
    pub vehicle_lights: bool,
    /// Street lamps and lit windows.
    pub lamps_on: bool,
    pub rain: bool,
    pub snowfall: bool,
    /// Standard deviation of the sensor noise, in 8-bit levels.
    pub noise_sigma: f32,
    /// Length of the zoom blur as a share of the distance to the vanishing point (0: none).
    pub blur: f32,
}

impl Look {
    pub fn new(time: TimeOfDay, weather: Weather, region: Region) -> Self {
        let (mut sky_top, mut sky_horizon, mut ambient, cloud, mut noise) = match time {
            TimeOfDay::Day => (
                [72, 128, 204],
                [184, 208, 232],
                [1.0, 1.0, 1.0],
                [244, 244, 246],
                2.5,
            ),
            TimeOfDay::Dusk => (
                [46, 54, 104],
                [236, 150, 96],
                [0.62, 0.55, 0.52],
                [200, 130, 110],
                4.0,
            ),
            TimeOfDay::Night => (
                [4, 7, 18],
                [22, 28, 46],
                [0.16, 0.17, 0.22],
                [30, 32, 40],
                7.0,
            ),
        };
        match region {
            Region::Desert if time == TimeOfDay::Day => {
                sky_top = [104, 158, 214];
                sky_horizon = [236, 214, 178];
            }
            Region::Snow if time == TimeOfDay::Day => {
                sky_top = [168, 178, 194];
                sky_horizon = [214, 220, 228];
            }
            Region::Industrial if time == TimeOfDay::Day => {
                sky_top = [146, 148, 144];
                sky_horizon = [196, 188, 170];
            }
            _ => {}
        }
        let night = time == TimeOfDay::Night;
        let mut look = Look {
            sky_top,
            sky_horizon,
            cloud,
            cloud_cover: if region == Region::Snow { 0.7 } else { 0.35 },
            ambient,
            fog_color: [
                sky_horizon[0] as f32,
                sky_horizon[1] as f32,
                sky_horizon[2] as f32,
            ],
            fog_density: 1.0 / 900.0,
            headlights: match time {
                TimeOfDay::Night => 1.1,
                TimeOfDay::Dusk => 0.25,
                TimeOfDay::Day => 0.0,
            },
            vehicle_lights: time != TimeOfDay::Day,
            lamps_on: night,
            rain: false,
            snowfall: region == Region::Snow,
            noise_sigma: noise,
            blur: 0.0,
        };
        match weather {
            Weather::Clear => {}
            Weather::Fog => {
                let c: [f32; 3] = match time {
                    TimeOfDay::Day => [196.0, 198.0, 200.0],
                    TimeOfDay::Dusk => [150.0, 132.0, 124.0],
                    TimeOfDay::Night => [34.0, 36.0, 40.0],
                };
                look.fog_color = c;
                look.fog_density = 1.0 / 38.0;
                look.sky_top = [c[0] as u8, c[1] as u8, c[2] as u8];
                look.sky_horizon = look.sky_top;
                look.cloud_cover = 0.0;
                look.vehicle_lights = true;
            }
            Weather::Rain => {
                look.rain = true;
                look.cloud_cover = 1.0;
                let dim = |c: [u8; 3], k: f32| c.map(|v| (v as f32 * k + 40.0 * (1.0 - k)) as u8);
                if !night {
                    look.sky_top = dim([124, 128, 138], 1.0);
                    look.sky_horizon = dim([170, 174, 180], 1.0);
                    look.cloud = [150, 152, 158];
                    look.fog_color = [160.0, 164.0, 170.0];
                }
                ambient = ambient.map(|a| a * 0.78);
                look.ambient = ambient;
                look.fog_density = 1.0 / 220.0;
                look.vehicle_lights = true;
                noise += 1.5;
                look.noise_sigma = noise;
            }
        }
        look
    }

    /// The light inside a tunnel: sodium lamps, no sky.
    pub fn tunnel(mut self) -> Self {
        self.ambient = [0.62, 0.50, 0.34];
        self.fog_color = [40.0, 34.0, 26.0];
        self.fog_density = self.fog_density.max(1.0 / 400.0);
        self.vehicle_lights = true;
        self.headlights = self.headlights.max(0.5);
        self.rain = false;
        self.snowfall = false;
        self
    }

    /// Share of a colour at distance `z` replaced by the fog colour.
    #[inline]
    pub fn fog(&self, z: f32) -> f32 {
        1.0 - (-z.max(0.0) * self.fog_density).exp()
    }

    /// The light falling on something at distance `z`, `rel_x` metres beside the camera axis.
    #[inline]
    pub fn light(&self, z: f32, rel_x: f32) -> [f32; 3] {
        let mut l = self.ambient;
        if self.headlights > 0.0 && z > 0.0 {
            let cone = 1.0 - rel_x.abs() / (2.5 + 0.22 * z);
            if cone > 0.0 {
                let d = z / 28.0;
                let add = self.headlights * cone.min(0.6) / (1.0 + d * d);
                l = [l[0] + add, l[1] + add * 0.98, l[2] + add * 0.9];
            }
        }
        l
    }

    /// A surface colour lit and fogged for distance `z`.
    #[inline]
    pub fn shade(&self, c: [u8; 3], z: f32, rel_x: f32) -> [u8; 3] {
        let l = self.light(z, rel_x);
        let fog = self.fog(z);
        let mut out = [0u8; 3];
        for i in 0..3 {
            out[i] =
                ((c[i] as f32 * l[i]).min(255.0) * (1.0 - fog) + self.fog_color[i] * fog) as u8;
        }
        out
    }

    /// A light source's colour (not darkened by the night), fogged for distance `z`.
    #[inline]
    pub fn emit(&self, c: [u8; 3], z: f32) -> [u8; 3] {
        let fog = self.fog(z) * 0.7;
        let mut out = [0u8; 3];
        for i in 0..3 {
            out[i] = (c[i] as f32 * (1.0 - fog) + self.fog_color[i] * fog) as u8;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fog_hides_far_things_and_night_darkens() {
        let fog = Look::new(TimeOfDay::Day, Weather::Fog, Region::Urban);
        let near = fog.shade([200, 0, 0], 2.0, 0.0);
        let far = fog.shade([200, 0, 0], 200.0, 0.0);
        assert!(near[0] > 150 && near[1] < 30);
        assert!((far[1] as i32 - 198).abs() < 4, "{far:?}");
        let night = Look::new(TimeOfDay::Night, Weather::Clear, Region::Urban);
        let lit = night.shade([200, 200, 200], 10.0, 0.0);
        let dark = night.shade([200, 200, 200], 10.0, 12.0);
        assert!(
            lit[0] > 2 * dark[0],
            "headlights light what is ahead: {lit:?} vs {dark:?}"
        );
        assert!(dark[0] < 60);
    }
}
