"""Media handling for untrusted links and uploads.

- `fetch`: `SafeFetcher`, the SSRF-guarded HTTP client (IP policy in `addresses`, error texts
  in `messages`), with `fetch_media` unfurling pages through `unfurl`.
- `decode`: `decode_image`, safe decoding into a few RGB frames; `sniff`: types from bytes.

Imports here stay lazy (nothing is re-exported) so that decoding does not pull in aiohttp.
"""
