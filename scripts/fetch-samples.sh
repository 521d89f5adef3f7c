#!/usr/bin/env bash
# Fetch the real, openly licensed sample images fovea tests on, into a cache outside git.
#
#   scikit-image wheel      skimage/data/{retina.jpg,microaneurysms.png,chelsea.png,coffee.png} (CC0 / BSD)
#   retinalysis-fundusprep  sdist samples/original/* (DRIVE, CHASE, HRF, PALM, dark image, Topcon DICOM)
#   pydicom-data wheel      RG1_UNCR.dcm (chest X-ray, MONOCHROME1) and the other test DICOMs
#
# Cache: ${FOVEA_CACHE:-~/.cache/fovea}/samples. Idempotent; offline with a cold cache it
# prints why and exits 0, so the tests that need the files skip loudly instead.
set -euo pipefail
source "$(dirname "$0")/pip-cache.sh"
pip_cache_init samples
pip_fetch --only-binary=:all: "scikit-image==0.26.0"
pip_fetch --only-binary=:all: "pydicom-data==1.0.0"
pip_fetch --no-binary=:all: "retinalysis-fundusprep==1.1.0"

python3 - "$dl" "$out" <<'PY'
import glob, os, sys, tarfile, zipfile
dl, out = sys.argv[1], sys.argv[2]
def extract_zip(pattern, wanted):
    (whl,) = glob.glob(os.path.join(dl, pattern))
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            base = os.path.basename(name)
            if base in wanted:
                with open(os.path.join(out, base), "wb") as f:
                    f.write(z.read(name))
extract_zip("scikit_image-*.whl", {"retina.jpg", "microaneurysms.png", "chelsea.png", "coffee.png"})
extract_zip("pydicom_data-*.whl", {"RG1_UNCR.dcm", "CT_small.dcm", "MR_small.dcm", "JPEG-LL.dcm", "SC_rgb.dcm"})
(sdist,) = glob.glob(os.path.join(dl, "retinalysis_fundusprep-*.tar.gz"))
with tarfile.open(sdist) as t:
    for m in t.getmembers():
        if m.isfile() and "/samples/original/" in m.name:
            with open(os.path.join(out, os.path.basename(m.name)), "wb") as f:
                f.write(t.extractfile(m).read())
PY
touch "$stamp"
echo "fetch-samples: $(ls "$out" | wc -l) files in $out"
