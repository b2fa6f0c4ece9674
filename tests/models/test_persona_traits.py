"""How a persona's trait reads: a ratio of event counts above 100 % (a step that repeats, as
Segment's Checkout Started does) reads as counts per step, not as an impossible share."""

from __future__ import annotations

from models.persona_words import trait


def test_a_share_reads_as_a_percentage() -> None:
    assert trait("buy_rate", 0.42, 0.21) == ("42% of checkouts completed, 2.0x the average "
                                             "(21%)")


def test_a_ratio_above_one_reads_as_counts_per_step() -> None:
    """Shapees: "123% of checkouts completed" for 1.23 purchases per checkout."""
    assert trait("buy_rate", 1.2, 0.6) == ("1.2 purchases per checkout, 2.0x the average "
                                            "(0.60)")
    assert trait("checkout_rate", 0.5, 3.19).startswith("0.50 checkouts per cart addition")


def test_a_channel_share_cannot_pass_one_and_stays_a_percentage() -> None:
    assert trait("share_email", 0.3, 0.1).startswith("30% of touchpoints on email")
