"""The Train page's views: the form, the Start row, the live view and the run history (pages/2_Train.py composes
them)."""
