"""tpod's web entry point: page config and navigation over pages/."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent

# (file, title, emoji icon). Emoji, never `:material/` icons: those make the browser fetch a
# font from an outside host, which a self-hosted tool must not do.
PAGES = [
    ("pages/home.py", "Home", "🏠"),
    ("pages/projects.py", "Projects", "🗂️"),
    ("pages/upload.py", "Upload", "📤"),
    ("pages/label.py", "Label", "✏️"),
    ("pages/stats.py", "Stats", "📊"),
    ("pages/datasets.py", "Datasets", "🧊"),
    ("pages/transfer.py", "Import / Export", "🔁"),
    ("pages/train.py", "Train", "🏋️"),
    ("pages/models.py", "Models", "🎯"),
    ("pages/queue.py", "Jobs", "🧵"),
]

st.set_page_config(page_title="tpod", page_icon="🎯", layout="wide")
nav = st.navigation(
    [st.Page(str(ROOT / f), title=t, icon=i, default=(f == "pages/home.py"))
     for f, t, i in PAGES if (ROOT / f).exists()]
)
nav.run()
