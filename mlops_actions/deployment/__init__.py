"""The brief's ``DeploymentAutomation`` facade (``from mlops_actions.deployment import ...``).

This package exists because the original brief's API names it: its snippets import
``mlops.deployment.DeploymentAutomation`` (``mlops`` renamed ``mlops_actions``), and the tests
run them verbatim. It is a thin facade over :mod:`mlops_actions.deploy` (the rollout engine,
its targets and ``apply``), which is where deployment logic lives; add nothing else here.
"""
