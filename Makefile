# wordstamp's task runner. The two set-up commands of the README: `make demo` and `make test`.
PY := .venv/bin/python
SHARED ?= ../shared/data

.PHONY: demo test models bench clean-venv

demo:  ## the daemon on the shipped models over a bundled recording; a subscriber prints the word events
	@scripts/setup.sh run
	@$(PY) -m scripts.demo

test:  ## the whole test suite (installs PortAudio, PulseAudio, TTS voices and the [train,dev,kokoro] extras first)
	@scripts/setup.sh test
	@scripts/run-tests.sh

models:  ## rebuild models/digits and models/animals from ../shared/data and TTS
	@scripts/setup.sh test
	@scripts/make-models.sh $(SHARED) --fresh

bench:  ## every performance figure -> bench/results.json and bench/RESULTS.md
	@scripts/setup.sh test
	@$(PY) -m bench.run

clean-venv:
	rm -rf .venv
