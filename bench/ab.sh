#!/usr/bin/env bash
# A/B in one GPU call: prototype trees (this tree with patches of bench/prototypes/ applied) travel beside this
# tree and run the same reproduce.sh stages on the same warm machine, so a prototype and its baseline are measured
# minutes apart on one GPU.
# Host (repo root, node_modules present):
#   bash bench/ab.sh pack bench/prototypes/NAME.patch[,OTHER.patch...] [...]
#     per argument: a scratch worktree of HEAD with its patches applied in order and generated/ regenerated,
#     committed on the branch ab/NAME (NAME: the patch names joined by '+'; that commit names its results, the branch
#     keeps it), its GPU bundle and provenance, packed into $AB_DIR/NAME.tgz (default .device/ab/, which travels with
#     .device). HEAD must be clean; a patch that does not apply writes nothing.
# GPU machine (repo root, after this tree's own stages or instead of them):
#   bash bench/ab.sh run STAGE [...]
#     per packed tree: unpacked under /tmp/qgen-ab/NAME, then `bash bench/reproduce.sh STAGE...` there, with the
#     same knobs (BENCH_ONLY, SUITE_ONLY, ...) and OUT=$OUT/ab-NAME (results.tgz of that tree's bench/results/).
#   bash bench/ab.sh list      # the packed trees and the commits they carry
set -uo pipefail
cd "$(dirname "$0")/.."
AB_DIR=${AB_DIR:-.device/ab}
usage="usage: bash bench/ab.sh pack PATCH... | run STAGE... | list"

die() { echo "ab: $*" >&2; exit 2; }

pack_one() {  # pack_one PATCH[,PATCH...]: writes $AB_DIR/NAME.tgz and the branch ab/NAME, or nothing
  local patches=() name="" tree root commit staging p
  IFS=, read -r -a list <<< "$1"
  for p in "${list[@]}"; do
    [ -f "$p" ] || die "patch '$p' does not exist; allowed: a file such as bench/prototypes/NAME.patch"
    [[ $(basename "$p" .patch) =~ ^[A-Za-z0-9._-]+$ ]] ||
      die "patch name '$(basename "$p" .patch)'; allowed: letters, digits, '.', '_', '-'"
    patches+=("$(realpath "$p")")
    name=${name:+$name+}$(basename "$p" .patch)
  done
  root=$(pwd)
  staging=$(mktemp -d)
  tree=$staging/$name
  git worktree add -q --detach "$tree" HEAD || die "git worktree add failed"
  fail() { git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1; rm -rf "$staging"; die "$@"; }
  for p in "${patches[@]}"; do
    git -C "$tree" apply "$p" 2>/dev/null ||
      fail "'$(basename "$p")' does not apply to HEAD ($(git rev-parse --short HEAD))" \
        "after the patches before it; nothing written"
  done
  ln -s "$root/node_modules" "$tree/node_modules"  # ignored by .gitignore
  (cd "$tree" && npx tsx scripts/generate.ts >/dev/null) || fail "npm run generate failed in the patched tree"
  git -C "$tree" add -A && git -C "$tree" commit -qm "ab: $name on $(git rev-parse --short HEAD)" ||
    fail "the commit of the patched tree failed"
  commit=$(git -C "$tree" rev-parse HEAD)
  (cd "$tree" && node scripts/bundle-gpu.mjs >/dev/null) || fail "the GPU bundle of the patched tree failed"
  git -C "$tree" archive --format=tar -o "$staging/tree.tar" HEAD &&
    tar -rf "$staging/tree.tar" -C "$tree" .device/qgen-gpu.mjs .device/provenance.json ||
    fail "packing the patched tree failed"
  mkdir -p "$AB_DIR"
  gzip -c "$staging/tree.tar" > "$AB_DIR/$name.tgz.tmp" && mv "$AB_DIR/$name.tgz.tmp" "$AB_DIR/$name.tgz" ||
    fail "writing $AB_DIR/$name.tgz failed"
  git branch -f "ab/$name" "$commit" >/dev/null  # keeps the commit that names the results
  git worktree remove --force "$tree" >/dev/null 2>&1
  rm -rf "$staging"
  echo "ab: $AB_DIR/$name.tgz ($(du -h "$AB_DIR/$name.tgz" | cut -f1); commit ${commit:0:7} on branch ab/$name)"
}

case ${1:-} in
  pack)
    shift
    [ $# -ge 1 ] || die "$usage"
    [ -z "$(git status --porcelain --untracked-files=no)" ] || die "the tree has uncommitted changes; commit first"
    [ -d node_modules ] || die "node_modules missing; run npm ci first"
    for p in "$@"; do pack_one "$p"; done ;;
  run)
    shift
    [ $# -ge 1 ] || die "$usage"
    ls "$AB_DIR"/*.tgz >/dev/null 2>&1 || die "no packed trees in $AB_DIR (bash bench/ab.sh pack on the host)"
    if [ ! -x /tmp/node ] && [ -s .device/node.xz ]; then xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; fi
    dest=${OUT:-}
    rc=0
    for f in "$AB_DIR"/*.tgz; do
      name=$(basename "$f" .tgz)
      dir=/tmp/qgen-ab/$name
      rm -rf "$dir" && mkdir -p "$dir" && tar xzf "$f" -C "$dir" || die "could not unpack $f"
      [ -n "$dest" ] && mkdir -p "$dest/ab-$name"
      echo "=== ab: $name ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["commit"][:7])' \
        "$dir/.device/provenance.json"))"
      (cd "$dir" && OUT=${dest:+$dest/ab-$name} bash bench/reproduce.sh "$@") || rc=$?
    done
    exit "$rc" ;;
  list)
    for f in "$AB_DIR"/*.tgz; do
      [ -e "$f" ] || { echo "ab: no packed trees in $AB_DIR"; exit 0; }
      echo "$(basename "$f" .tgz): $(tar xzf "$f" -O .device/provenance.json | grep '"commit"' | tr -d ' ,')"
    done ;;
  *) die "$usage" ;;
esac
