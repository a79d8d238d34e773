"""Make the onnxruntime-gpu wheel small enough to travel to a GPU machine that has no network.

    python scripts/gpu/slim_wheel.py IN.whl OUT.whl [--keep-sm 90]

The wheel is ~256 MB, the device tool carries at most 64 MiB per call. Most of it is GPU code:
`libonnxruntime_providers_cuda.so` holds a fat binary with machine code for sm_75, 80, 86, 89, 90
and 120 (zstd-compressed cubins, no PTX). A GPU runs only the cubins of its own architecture
(sm_90: H100/H200), so this script zeroes the payloads of the other architectures' entries, in
place: offsets, sizes and headers stay as they were, and the CUDA driver, which picks the entry
of the device's architecture, never reads the zeroed ones. It also drops what the Python package
does not load: the C API library (`libonnxruntime.so.*`; the Python module is self-contained),
the TensorRT provider, and the `tools`/`transformers` helper packages. The result is written
uncompressed (ZIP_STORED), so that `xz` on it compresses the code itself, and its RECORD is
rewritten with the new hashes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import struct
import sys
import zipfile

FATBIN_MAGIC = 0xBA55ED50
DROP_SUFFIXES = ("libonnxruntime_providers_tensorrt.so",)
DROP_PREFIXES = ("onnxruntime/tools/", "onnxruntime/transformers/")


def _elf_section(data: bytes | bytearray, name: bytes) -> tuple[int, int] | None:
    """(file offset, size) of an ELF64 little-endian section, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)[0]
    for i in range(shnum):
        base = shoff + i * shentsize
        name_off, = struct.unpack_from("<I", data, base)
        end = data.index(b"\0", str_off + name_off)
        if bytes(data[str_off + name_off:end]) == name:
            off, size = struct.unpack_from("<QQ", data, base + 0x18)
            return off, size
    return None


def prune_fatbin(data: bytearray, keep_sm: int) -> dict:
    """Zero, in place, the payload of every fat-binary entry whose architecture is not `keep_sm`.
    Returns counts and bytes per architecture (kept and zeroed)."""
    sec = _elf_section(data, b".nv_fatbin")
    if sec is None:
        raise ValueError("no .nv_fatbin section")
    pos, end = sec[0], sec[0] + sec[1]
    stats: dict[str, dict] = {}
    while pos + 16 <= end:
        magic, _version, header_size, fat_size = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fat binaries are 8-byte aligned in the section
            continue
        entry, stop = pos + header_size, pos + header_size + fat_size
        while entry < stop:
            kind, _ver, entry_header, padded = struct.unpack_from("<HHII", data, entry)
            sm, = struct.unpack_from("<I", data, entry + 28)
            row = stats.setdefault(f"sm_{sm}" + ("" if kind == 2 else "_ptx"), {"entries": 0, "bytes": 0})
            row["entries"] += 1
            row["bytes"] += padded
            if sm != keep_sm:
                start = entry + entry_header
                data[start:start + padded] = bytes(padded)
            entry += entry_header + padded
        pos = stop
    kept = sum(v["bytes"] for k, v in stats.items() if k == f"sm_{keep_sm}")
    if kept == 0:
        raise ValueError(f"the fat binary has no sm_{keep_sm} code: this build cannot run on that GPU")
    return stats


def _record_hash(blob: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).rstrip(b"=").decode()


def slim(src: str, dst: str, keep_sm: int) -> dict:
    report = {"dropped": [], "fatbin": None}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        rows = []
        for info in zin.infolist():
            name = info.filename
            if name == record_name:
                continue
            base = name.rsplit("/", 1)[-1]
            if (name.startswith(DROP_PREFIXES) or base.endswith(DROP_SUFFIXES)
                    or base.startswith("libonnxruntime.so")):
                report["dropped"].append(name)
                continue
            blob = zin.read(name)
            if base == "libonnxruntime_providers_cuda.so":
                buf = bytearray(blob)
                report["fatbin"] = prune_fatbin(buf, keep_sm)
                blob = bytes(buf)
            out = zipfile.ZipInfo(name, date_time=info.date_time)
            out.external_attr = info.external_attr  # keeps the .so files executable
            zout.writestr(out, blob)
            rows.append(f"{name},{_record_hash(blob)},{len(blob)}")
        rows.append(f"{record_name},,")
        zout.writestr(zipfile.ZipInfo(record_name, date_time=(2026, 1, 1, 0, 0, 0)), "\n".join(rows) + "\n")
    if report["fatbin"] is None:
        raise ValueError("no libonnxruntime_providers_cuda.so in this wheel: is it onnxruntime-gpu?")
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--keep-sm", type=int, default=90, help="GPU architecture to keep (90: H100/H200)")
    a = ap.parse_args(argv)
    try:
        report = slim(a.src, a.dst, a.keep_sm)
    except (OSError, ValueError, zipfile.BadZipFile, StopIteration) as exc:
        print(f"error: {a.src}: {exc}", file=sys.stderr)
        return 2
    for arch, row in sorted(report["fatbin"].items()):
        what = "kept" if arch == f"sm_{a.keep_sm}" else "zeroed"
        print(f"  {arch}: {row['entries']} cubins, {row['bytes'] / 1e6:.1f} MB {what}")
    print(f"  dropped {len(report['dropped'])} files not loaded by the Python package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
