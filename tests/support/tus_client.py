"""Uploads a file with tuspy, a real tus 1.0.0 client (used by tests/tests/api/uploads.rs).

usage: tus_client.py ENDPOINT TOKEN FILE TARGET_DIR FILENAME CHUNK_SIZE
Prints the upload URL on success; exits non-zero on any failure.
"""

import sys

from tusclient import client


def main() -> int:
    endpoint, token, path, target_dir, filename, chunk = sys.argv[1:7]
    tus = client.TusClient(endpoint, headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(
        path,
        chunk_size=int(chunk),
        metadata={"path": target_dir, "filename": filename},
        upload_checksum=True,
    )
    uploader.upload()
    print(uploader.url)
    return 0 if uploader.offset == uploader.get_file_size() else 1


if __name__ == "__main__":
    sys.exit(main())
