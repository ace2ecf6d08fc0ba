#!/usr/bin/env bash
# demo.sh BUILD_DIR OUT_DIR — generate the demo 4D-STEM dataset and run the
# standard analyses on it, writing PNG images and one HDF5 file.
set -euo pipefail
build=${1:-build}
out=${2:-demo}
tessera="$build/tessera"
mkdir -p "$out"
data="$out/scan.raw"
if [ ! -f "$data" ]; then
  "$build/tsr-gen" demo "$data" --scan 64,64 --sig 128,128 --seed 1
fi
ds=(--format raw --set nav_shape=64,64 --set sig_shape=128,128 --set dtype='<u2')
run() { "$tessera" run "$@" --quiet >/dev/null; }

run sum "$data" "${ds[@]}" --log -o "$out/sum.png"
run sumsig "$data" "${ds[@]}" -o "$out/sumsig.png"
run masks "$data" "${ds[@]}" --param mask=disk:64,64,17 -o "$out/bright_field.png"
run masks "$data" "${ds[@]}" --param mask=ring:64,64,18,64 -o "$out/annular_dark_field.png"
run stddev "$data" "${ds[@]}" --buffer std --log -o "$out/stddev.png"
run com "$data" "${ds[@]}" --param cx=64 --param cy=64 --param r=17 --buffer magnitude \
    -o "$out/com_magnitude.png"
run fem "$data" "${ds[@]}" --param cx=64 --param cy=64 --param ri=30 --param ro=45 \
    -o "$out/fem.png"
run sum,sumsig,stddev,masks,com "$data" "${ds[@]}" --param masks.mask=disk:64,64,17 \
    --param masks.mask=ring:64,64,18,64 --param com.cx=64 --param com.cy=64 --param com.r=17 \
    -o "$out/results.h5"

cat <<MSG
Tessera demo: a 64×64 scan of 128×128 uint16 frames ($data, 128 MiB)
  sum of all frames             $out/sum.png
  total intensity per position  $out/sumsig.png
  virtual bright field          $out/bright_field.png
  virtual annular dark field    $out/annular_dark_field.png
  standard deviation            $out/stddev.png
  centre of mass: |shift|       $out/com_magnitude.png
  FEM (ring 30..45)             $out/fem.png
  all results (HDF5)            $out/results.h5
Try:  $tessera info $data ${ds[*]}
MSG
