//! Decoding image files and DICOM objects into one 8-bit RGB raster.
