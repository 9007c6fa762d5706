"""One default for each setting that more than one route uses, defined once.

The tab, the REST API, the CLI, the img2img script and the WebUI settings all read these, so the same job
gives the same result whichever way it is asked for. Cheap to import (no torch, no pydantic).
"""

#: the shared SAM embedding cache (bytes); a vit_b/l/h embedding is 4 MiB at fp32, so this keeps 64 images
EMBEDDING_CACHE_BYTES = 256 * 1024 * 1024

#: a request body that stops arriving for this long (seconds between two reads) is answered 408 and dropped,
#: so a client that declares more bytes than it sends cannot hold a connection and its worker forever
REQUEST_BODY_TIMEOUT_S = 30.0

#: outpaint seam: px of the original regenerated, and the soft edge of the masks (at most the band)
OUTPAINT_BAND = 32
OUTPAINT_FEATHER = 24
#: large-image inpaint: px beyond the mask regenerated, soft edge, px of surroundings per crop
INPAINT_BAND = 8
INPAINT_FEATHER = 8
INPAINT_CONTEXT = 64

#: tiles: side when the backend has no working size of its own, and px shared by neighbours
TILE_SIZE = 512
TILE_OVERLAP = 64

#: SAM's automatic mask generator grid for the segment map (points per image side)
SEGMENT_MAP_POINTS_PER_SIDE = 16
#: the segment map is computed at this working resolution at most (long side, px)
SEGMENT_MAP_MAX_SIDE = 1024

#: text -> boxes: the score a detection needs, per detector family (their scores live on different scales:
#: GroundingDINO's 0.35 and OWL's ~0.1 are what their authors' demos use), and GroundingDINO's per-token
#: threshold for the label text
DETECT_BOX_THRESHOLD = {"grounding_dino": 0.35, "owlv2": 0.2, "owlvit": 0.1, "sam3": 0.5}
DETECT_TEXT_THRESHOLD = 0.25
#: at most this many boxes per text (SAM decodes one mask per kept box)
DETECT_MAX_BOXES = 20
#: the manifest written beside every output (one JSON line per output)
MANIFEST_NAME = "segfill-manifest.jsonl"

#: the SAM model the tab recommends when SAM runs on a CPU (registry name): MobileSAM answers a first click in
#: about a second there, where ViT-B needs several (BENCHMARKS.md, first click)
CPU_RECOMMENDED_SAM_MODEL = "mobile_sam"

#: SAM image-encoder precision: "auto" = bf16 autocast where the device has native bf16 and the model family
#: matches fp32 within segfill.sam.precision.BF16_TOLERANCE, else fp32; "fp32" / "bf16" force it
SAM_PRECISION = "auto"
#: prompts the segment map decodes at once: bounds the decoder's memory (16: ~200 MB for a ViT model)
SEGMENT_MAP_POINTS_PER_BATCH = 16
