//! Writing a data set in the APTOS layout: `DIR/train_images/<id_code>.png` and
//! `DIR/train.csv` with header
//! `id_code,diagnosis,sex,age_band,camera,site,patient_id,gradable`.
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use image::RgbImage;
use serde::Serialize;

use super::cohort::EyeSpec;

/// File name of the label table inside the output folder.
pub const CSV_NAME: &str = "train.csv";
/// Folder of the images inside the output folder.
pub const IMAGES_DIR: &str = "train_images";

/// One CSV row; field order is the column order.
#[derive(Serialize)]
struct Row<'a> {
    id_code: &'a str,
    diagnosis: u8,
    sex: char,
    age_band: &'a str,
    camera: &'a str,
    site: &'a str,
    patient_id: &'a str,
    gradable: u8,
}

/// An output folder ready to receive images and the CSV.
#[derive(Debug)]
pub struct Writer {
    root: PathBuf,
}

impl Writer {
    /// Creates `root` and `root/train_images` (reusing them if present) and checks that
    /// files can be written there before any work starts.
    pub fn create(root: &Path) -> anyhow::Result<Self> {
        let images = root.join(IMAGES_DIR);
        fs::create_dir_all(&images)
            .with_context(|| format!("creating output folder {}", images.display()))?;
        let probe = root.join(".synth-write-test");
        fs::write(&probe, b"")
            .with_context(|| format!("output folder {} is not writable", root.display()))?;
        fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Path of the image of `spec`.
    pub fn image_path(&self, spec: &EyeSpec) -> PathBuf {
        self.root
            .join(IMAGES_DIR)
            .join(format!("{}.png", spec.id_code))
    }

    /// Path of the CSV.
    pub fn csv_path(&self) -> PathBuf {
        self.root.join(CSV_NAME)
    }

    /// Writes the image of `spec` as PNG.
    pub fn write_image(&self, spec: &EyeSpec, img: &RgbImage) -> anyhow::Result<()> {
        let path = self.image_path(spec);
        img.save_with_format(&path, image::ImageFormat::Png)
            .with_context(|| format!("writing image {}", path.display()))
    }

    /// Writes the label table, one row per spec in order.
    pub fn write_csv(&self, specs: &[EyeSpec]) -> anyhow::Result<PathBuf> {
        let path = self.csv_path();
        let mut w = csv::Writer::from_path(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        for s in specs {
            w.serialize(Row {
                id_code: &s.id_code,
                diagnosis: s.grade,
                sex: s.sex,
                age_band: s.age_band,
                camera: &s.camera.name,
                site: &s.site,
                patient_id: &s.patient_id,
                gradable: u8::from(s.defect.is_none()),
            })
            .with_context(|| format!("writing {}", path.display()))?;
        }
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::super::SynthConfig;
    use super::super::camera::Defect;
    use super::super::cohort::plan;
    use super::*;

    #[test]
    fn csv_has_the_fixed_header_and_one_row_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::create(&dir.path().join("out")).unwrap();
        let mut specs = plan(&SynthConfig::new(3, 1, 64).unwrap());
        specs[2].defect = Some(Defect::Defocused);
        let path = w.write_csv(&specs).unwrap();
        let text = fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "id_code,diagnosis,sex,age_band,camera,site,patient_id,gradable"
        );
        assert_eq!(lines.len(), 4);
        let row0: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(row0[0], specs[0].id_code);
        assert_eq!(row0[1], "0");
        assert_eq!(row0[6], "P0001");
        assert_eq!(row0[7], "1");
        assert!(lines[3].ends_with(",P0002,0"), "{}", lines[3]);
        assert!(
            w.image_path(&specs[0])
                .ends_with(format!("train_images/{}.png", specs[0].id_code))
        );
        assert!(dir.path().join("out/train_images").is_dir());
    }

    #[test]
    fn unwritable_root_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let err = Writer::create(&file.join("sub")).unwrap_err();
        assert!(format!("{err:#}").contains("a-file/sub"), "{err:#}");
    }
}
