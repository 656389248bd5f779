"""The slither lint's accepted findings come from the contract's README (each with a reason), and
name real slither detectors. (The slither run itself is `./run lint`, not a test: ~30 s.)"""

from __future__ import annotations

from tools import contract_lint


def test_accepted_findings_are_documented_detectors_with_reasons() -> None:
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    known = {obj.ARGUMENT for obj in vars(all_detectors).values()
             if isinstance(obj, type) and issubclass(obj, AbstractDetector) and obj is not AbstractDetector}
    accepted = contract_lint.accepted_detectors()
    assert "assembly" in accepted and "reentrancy-benign" in accepted
    for detector, reason in accepted.items():
        assert detector in known, detector
        assert len(reason) > 30, detector


def test_failing_impacts_are_high_and_medium() -> None:
    assert contract_lint.FAILING_IMPACTS == ("High", "Medium")
