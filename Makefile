# Two entry points, each doing its own set-up (see README.md).
.PHONY: demo test unit lint clean-venv

demo:  ## the main job: cluster, topology, flash-sale suite, report
	scripts/demo.sh

test:  ## everything CI runs: static checks, unit and e2e tests
	scripts/test.sh

unit:  ## static checks and unit tests only (no Docker, no cluster)
	scripts/test.sh --unit

clean-venv:
	rm -rf .venv
