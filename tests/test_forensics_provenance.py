"""C2PA Content Credentials: no credentials, signed with a throwaway test certificate, tampered,
damaged, unsupported format and the library missing. Every fixture is made here."""
from __future__ import annotations

import datetime
import io
import sys

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from core.forensics import forensic_report
from core.forensics.provenance import mime_type, read_credentials

AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _jpeg() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _cert(subject: str, issuer: x509.Certificate | None, public_key, signing_key) -> x509.Certificate:
    """A short-lived certificate with the extensions the C2PA signer profile checks: a self-signed
    CA without `issuer`, else a signing leaf issued by it."""
    ca = issuer is None
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forensics Test")])
    usage = dict.fromkeys(["content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
                           "encipher_only", "decipher_only"], False)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def signed_jpeg() -> bytes:
    """A JPEG signed by a throwaway CA + leaf chain, declaring an AI 'created' action."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Forensics Test CA", None, ca_key.public_key(), ca_key)
    leaf = _cert("Forensics Test Signer", ca, key.public_key(), ca_key)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, pem_key, None))
    manifest = {
        "claim_generator_info": [{"name": "forensics-test", "version": "1.0"}],
        "title": "generated.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": AI_SOURCE, "softwareAgent": {"name": "Midjourney"}}]}}],
    }
    out = io.BytesIO()
    c2pa.Builder(manifest).sign(signer, "image/jpeg", io.BytesIO(_jpeg()), out)
    return out.getvalue()


def test_no_credentials_is_said_plainly():
    result = read_credentials(_jpeg())
    assert result["status"] == "none"
    assert "No Content Credentials" in result["summary"]
    assert result["flags"] == []


def test_signed_file_shows_signer_generator_actions_and_state(signed_jpeg):
    result = read_credentials(signed_jpeg)
    assert result["status"] == "present"
    assert result["validation_state"] == "Valid"
    assert result["validation_failures"] == []
    assert result["signer"]["common_name"] == "Forensics Test Signer"
    assert result["claim_generator"].startswith("forensics-test 1.0")
    assert result["actions"][0] == {"action": "c2pa.created", "software_agent": "Midjourney", "digital_source_type": AI_SOURCE}
    assert result["ai_declared"] is True
    assert result["signer_on_trust_list"] is False  # no trust list ships offline: said, not hidden
    assert "trust list" in result["summary"]
    kinds = {f["kind"] for f in result["flags"]}
    assert kinds == {"generator"}


def test_pixels_changed_after_signing_fail_validation(signed_jpeg):
    tampered = bytearray(signed_jpeg)
    tampered[-10] ^= 0xFF  # inside the entropy-coded image data, before the end-of-image marker
    result = read_credentials(bytes(tampered))
    assert result["validation_state"] == "Invalid"
    assert any("mismatch" in f["code"] for f in result["validation_failures"])
    assert any(f["kind"] == "provenance" for f in result["flags"])


def test_damaged_manifest_gives_a_note_not_a_crash(signed_jpeg):
    start = signed_jpeg.find(b"jumb")
    damaged = bytearray(signed_jpeg)
    damaged[start + 200 : start + 400] = bytes(200)
    result = read_credentials(bytes(damaged))
    assert result["status"] == "error"
    assert "damaged or unreadable" in result["summary"]
    assert result["flags"][0]["kind"] == "provenance"


def test_format_the_reader_cannot_carry_is_unsupported():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    assert read_credentials(buffer.getvalue())["status"] == "unsupported"
    assert read_credentials(b"\xff\xd8\xff garbage")["status"] == "unreadable"  # a broken file, not a broken manifest


def test_missing_library_says_provenance_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # makes `import c2pa` raise ImportError
    result = read_credentials(_jpeg())
    assert result["status"] == "unavailable"
    assert result["summary"].startswith("Provenance unavailable:")


def test_mime_type_from_magic_bytes():
    assert mime_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert mime_type(b"\x00\x00\x00\x18ftypqt  ") == "video/quicktime"
    assert mime_type(b"\x00\x00\x00\x18ftypisom") == "video/mp4"
    assert mime_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert mime_type(b"\x1a\x45\xdf\xa3") is None


def test_report_puts_provenance_flags_first(signed_jpeg):
    report = forensic_report(signed_jpeg, "image")
    assert report["provenance"]["status"] == "present"
    assert report["flags"][0]["kind"] == "generator"  # valid credentials: no provenance flag to lead
    tampered = bytearray(signed_jpeg)
    tampered[-10] ^= 0xFF
    kinds = [f["kind"] for f in forensic_report(bytes(tampered), "image")["flags"]]
    assert kinds[0] == "provenance" and "generator" in kinds[1:]
