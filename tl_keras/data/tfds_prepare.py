"""Preparing a TFDS dataset, for any modality: a download that fails offline is one line, and fails in seconds.

Image (`vision.tfds_source`) and text (`text.tables`) sources both call
`prepare`; it lives here, below both, so that neither modality imports the
other.
"""

from __future__ import annotations

import tensorflow as tf

from tl_keras.config.settings import ConfigError


def prepare(builder, name: str, flag: str = "--tfds") -> None:
    """`builder.download_and_prepare()`, with a failed download said in one line that names the way out.

    Offline, TFDS retries and then raises from deep inside its downloader (a
    `requests` connection error, wrapped or not); a user needs to know only
    that the download failed and that a prepared copy can be pointed at.
    """
    from_catalogue = type(builder).__module__.startswith("tensorflow_datasets.")  # a user's own builder may need no network
    if from_catalogue and not tf.io.gfile.exists(f"{builder.data_dir}/dataset_info.json") and not can_reach(TFDS_HOST):
        raise ConfigError(
            f"{flag}={name}: not prepared in {builder.data_dir} and {TFDS_HOST} cannot be reached (no internet?); prepare the "
            "dataset on a machine that has it and pass its folder as --tfds_data_dir"
        )
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001 - re-raised unless it is a download failure
        if not is_download_failure(error):
            raise
        raise ConfigError(
            f"{flag}={name}: the download failed ({type(error).__name__}); without internet, prepare the dataset on a machine "
            f"that has it and pass its folder as --tfds_data_dir"
        ) from None


# Where TFDS fetches prepared data and metadata first; a dataset's own sources are other hosts behind the same network.
TFDS_HOST = "storage.googleapis.com"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def can_reach(host: str, timeout: float = 5.0) -> bool:
    """Whether `host` resolves within `timeout` seconds (always True behind a proxy, which resolves names itself).

    Offline, TFDS retries every download for minutes, printing each retry,
    before it fails; a name that does not resolve will not on the tenth try,
    so one look-up decides in milliseconds.
    """
    import os
    import socket
    from concurrent.futures import ThreadPoolExecutor, TimeoutError as LookupTimeout

    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    pool = ThreadPoolExecutor(max_workers=1)  # getaddrinfo has no timeout of its own
    try:
        pool.submit(socket.getaddrinfo, host, 443).result(timeout=timeout)
        return True
    except (OSError, LookupTimeout):
        return False
    finally:
        pool.shutdown(wait=False)


def is_download_failure(error: BaseException) -> bool:
    """Whether `error`, or any error it was raised from, is a network failure."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        kind = type(error).__name__
        if isinstance(error, (ConnectionError, TimeoutError)) or "Connection" in kind or "Download" in kind or "NameResolution" in kind:
            return True
        error = error.__cause__ or error.__context__
    return False
