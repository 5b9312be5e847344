"""ResNet Explorer (`streamlit run app.py`): one navigation over Home and the pages, the frame drawn once.
The pages are listed in ui/frame.py (PAGES); each page's views live under ui/<page>/."""

from ui.frame import run_app

run_app()
