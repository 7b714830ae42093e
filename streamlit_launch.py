"""Start Streamlit for tpod with st.navigation in charge from the very first request.

Streamlit treats an app that has a `pages/` folder beside its entry script as an old-style (v1)
multipage app until the entry script has called `st.navigation` once in that process: a deep
link such as /label opened first after a restart would run pages/label.py on its own, with an
auto-generated sidebar. tpod's pages are always routed by streamlit_app.py, so `python -m app
serve` starts Streamlit through this file: `python streamlit_launch.py run streamlit_app.py ...`.
"""
from __future__ import annotations

import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web.cli import main

PagesManager.uses_pages_directory = False

if __name__ == "__main__":
    sys.exit(main())
