# The autoindex page in headless chromium (tests/integration/test_browser.py), kept as
# docs/listing.png. `make test` runs the same test and writes its screenshot under tmp.

.PHONY: screenshot

screenshot: venv gluster  ## refresh docs/listing.png: the listing in headless chromium at phone width
	LISTING_SCREENSHOT=docs/listing.png $(BIN)/python -m pytest -p no:cacheprovider -q \
		tests/integration/test_browser.py -k listing_renders
