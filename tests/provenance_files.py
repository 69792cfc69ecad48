"""Real image files with provenance, made offline for the provenance tests and benchmark:
C2PA-signed (a throwaway CA made with `cryptography`), generator parameter chunks, SD watermarks,
camera EXIF, XMP and IPTC digital source types, and malformed metadata."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import struct

import numpy as np
from PIL import Image, PngImagePlugin

AI_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAMERA_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
WEBUI_PARAMETERS = ("a red fox in the snow, golden hour\nNegative prompt: blurry\n"
                    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234567, Size: 512x512, "
                    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "a: 1, b: 2", Version: v1.9.4')
COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                                               "model": ["4", 0], "positive": ["6", 0]}},
}


def picture(height: int = 320, width: int = 320, seed: int = 0) -> np.ndarray:
    """A smooth picture with mild noise (watermarks need some texture, JPEG likes smoothness)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 60 * np.sin(x / 17 + c) * np.cos(y / 23 - c) for c in (0, 1, 2)], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def encode(rgb: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    if fmt == "WEBP":
        options.setdefault("lossless", True)
    Image.fromarray(rgb).save(buffer, fmt, **options)
    return buffer.getvalue()


def stripped(data: bytes) -> bytes:
    """The pixels re-encoded with no metadata at all (what a social network upload often does)."""
    image = Image.open(io.BytesIO(data))
    return encode(np.asarray(image.convert("RGB")), image.format, **({"quality": 95} if image.format == "JPEG" else {}))


# --- C2PA -------------------------------------------------------------------------------------

@functools.cache
def test_ca() -> tuple[bytes, bytes, bytes]:
    """(signer chain PEM, signer key PEM, CA certificate PEM): an EC P-256 CA and signer with the
    key usages C2PA requires of a signing certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "synthscan tests")])

    def usage(**on) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**(flags | on))

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: str, issuer: str, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer)).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    ca = (builder("synthscan test CA", "synthscan test CA", ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True).sign(ca_key, hashes.SHA256()))
    signer = (builder("synthscan test signer", "synthscan test CA", key.public_key())
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(digital_signature=True), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (signer.public_bytes(pem) + ca.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            ca.public_bytes(pem))


def c2pa_signed(data: bytes, fmt: str, source_type: str | None, generator: str = "synthscan-tests") -> bytes:
    """`data` with a C2PA manifest: a c2pa.created action with `source_type` (an IPTC URL)."""
    import c2pa

    chain, key, _ = test_ca()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    action = {"action": "c2pa.created"} | ({"digitalSourceType": source_type} if source_type else {})
    manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": "test image",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}]}
    out = io.BytesIO()
    c2pa.Builder(manifest).sign(signer, MIME[fmt], io.BytesIO(data), out)
    return out.getvalue()


def tampered(data: bytes) -> bytes:
    """A byte of the compressed pixels flipped after signing: in a WebP's image chunk, else near
    the end (JPEG scan data, PNG IDAT; the manifest sits before them)."""
    bad = bytearray(data)
    webp_image = max(data.find(b"VP8L"), data.find(b"VP8 "))
    bad[webp_image + 40 if data[8:12] == b"WEBP" else -40] ^= 0xFF
    return bytes(bad)


def broken_c2pa_store(data: bytes) -> bytes:
    """The manifest store's bytes scrambled in place, so that it cannot be parsed."""
    start = data.find(b"jumb")
    bad = bytearray(data)
    for i in range(start + 200, start + 260):
        bad[i] ^= 0x5A
    return bytes(bad)


# --- generator parameters ---------------------------------------------------------------------

def png_with_text(rgb: np.ndarray, chunks: dict[str, str], compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value, zip=True) if compressed else info.add_text(key, value)
    return encode(rgb, "PNG", pnginfo=info)


def webui_png(rgb: np.ndarray) -> bytes:
    return png_with_text(rgb, {"parameters": WEBUI_PARAMETERS})


def comfyui_png(rgb: np.ndarray) -> bytes:
    return png_with_text(rgb, {"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps({"nodes": [{"id": 3}]})},
                         compressed=True)


def user_comment(text: str) -> bytes:
    """EXIF UserComment as the WebUI writes it (piexif's UNICODE encoding: big-endian UTF-16)."""
    return b"UNICODE\x00" + text.encode("utf-16-be")


def exif_with(user: bytes | None = None, make: str | None = None, model: str | None = None,
              exposure: bool = False, software: str | None = None) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in ((0x010F, make), (0x0110, model), (0x0131, software)):
        if value:
            exif[tag] = value
    ifd = exif.get_ifd(0x8769)
    if user:
        ifd[0x9286] = user
    if exposure:
        ifd.update({0x829A: 1 / 250, 0x829D: 2.8, 0x8827: 200, 0x9003: "2024:05:01 10:20:30"})
    return exif


def webui_jpeg(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    extra = {"quality": 92} if fmt == "JPEG" else {}
    return encode(rgb, fmt, exif=exif_with(user=user_comment(WEBUI_PARAMETERS)).tobytes(), **extra)


def camera_jpeg(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    extra = {"quality": 92} if fmt == "JPEG" else {}
    exif = exif_with(make="Canon", model="Canon EOS R6", exposure=True)
    return encode(rgb, fmt, exif=exif.tobytes(), **extra)


# --- watermark --------------------------------------------------------------------------------

def sd_watermarked(rgb: np.ndarray, scheme: str = "v1") -> np.ndarray:
    """`rgb` with the watermark Stable Diffusion's scripts embed (BGR in, as OpenCV reads)."""
    from imwatermark import WatermarkEncoder

    from synthscan.provenance.watermark import SDXL_BITS

    encoder = WatermarkEncoder()
    if scheme == "v1":
        encoder.set_watermark("bytes", b"StableDiffusionV1")
    else:
        encoder.set_watermark("bits", [int(b) for b in SDXL_BITS])
    return np.ascontiguousarray(encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")[:, :, ::-1])


# --- XMP / IPTC -------------------------------------------------------------------------------

def xmp_packet(source_type: str | None = None, creator_tool: str | None = None, description: str | None = None) -> bytes:
    props = ""
    if source_type:
        props += f"<Iptc4xmpExt:DigitalSourceType>{source_type}</Iptc4xmpExt:DigitalSourceType>"
    if creator_tool:
        props += f"<xmp:CreatorTool>{creator_tool}</xmp:CreatorTool>"
    if description:
        props += f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>'
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/">{props}</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode("utf-8")


def with_xmp(rgb: np.ndarray, fmt: str, packet: bytes) -> bytes:
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8"))
        return encode(rgb, fmt, pnginfo=info)
    return encode(rgb, fmt, xmp=packet, **({"quality": 92} if fmt == "JPEG" else {}))


def with_iptc(jpeg: bytes, caption: str, program: str | None = None) -> bytes:
    """An APP13 Photoshop IRB with IPTC-IIM datasets (2:120 caption, 2:65 program) after SOI."""
    def dataset(number: int, value: str) -> bytes:
        raw = value.encode("utf-8")
        return b"\x1c\x02" + bytes([number]) + struct.pack(">H", len(raw)) + raw

    iim = dataset(120, caption) + (dataset(65, program) if program else b"")
    iim += b"\x00" * (len(iim) % 2)
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    body = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


# --- malformed --------------------------------------------------------------------------------

def broken_xmp(rgb: np.ndarray, fmt: str) -> bytes:
    return with_xmp(rgb, fmt, xmp_packet(AI_TYPE)[:-60])  # cut inside the markup


def exif_wrong_offsets(rgb: np.ndarray) -> bytes:
    """A JPEG whose EXIF IFD offset points past the end of the EXIF block."""
    raw = bytearray(exif_with(make="Canon", model="Canon EOS R6", exposure=True).tobytes())
    raw[10:14] = struct.pack("<I", 0x7FFF0000)  # IFD0 offset in the TIFF header (after b"Exif\0\0")
    return encode(rgb, "JPEG", quality=92, exif=bytes(raw))


def truncated_text_chunk(rgb: np.ndarray) -> bytes:
    """A PNG whose `parameters` text chunk declares more bytes than it holds: cut after the
    chunk's first bytes and followed by the rest of the file's chunks."""
    data = webui_png(rgb)
    start = data.find(b"tEXtparameters") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    end = start + 12 + length
    return data[:start] + struct.pack(">I", length + 1_000_000) + data[start + 4:end] + data[end:]


def oversized_text_chunk(rgb: np.ndarray) -> bytes:
    """A compressed `parameters` chunk that inflates beyond Pillow's text limit (a zip bomb)."""
    return png_with_text(rgb, {"parameters": "A" * (PngImagePlugin.MAX_TEXT_CHUNK + 10)}, compressed=True)
