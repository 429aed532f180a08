"""Image libraries to retrieve from: pictures in a CLIP space, searched through a FAISS index.

- :mod:`.clip_space`: :class:`ClipSpace`, a CLIP model's image and text embeddings;
- :mod:`.vectors`: :func:`build_library` (``llmga index build``), :class:`ImageLibrary`, and
  :func:`open_gallery` (a live library: the studio's own pictures).

Embedding control (:mod:`llmga.embedding`) retrieves from a library when its
decision says a picture there answers the request better than a new painting.
"""

from .clip_space import ClipSpace, clip_folder
from .vectors import INDEX_DIR, Hit, ImageLibrary, LibraryInfo, build_library, open_gallery, pictures_in

__all__ = ["INDEX_DIR", "ClipSpace", "Hit", "ImageLibrary", "LibraryInfo", "build_library", "clip_folder",
           "open_gallery", "pictures_in"]
