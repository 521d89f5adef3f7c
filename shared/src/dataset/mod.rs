//! Reading labelled data sets: image folders, CSV manifests, DICOM files, and splits.
