//! Preprocessing shared by training and device: FOV crop, resize, normalisation, augmentation.
