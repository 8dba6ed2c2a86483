"""The campaign list benchmark (bench/campaign_lists.py) at a small size: every outcome, nothing left behind."""

from __future__ import annotations

import pytest

from bench.campaign_lists import MIX, campaign_list_check_bench
from bench.report import campaign_list_budgets, campaign_list_markdown
from booking.models import Organisation, Patient
from messaging.models import Campaign, CampaignEntry


@pytest.mark.django_db
def test_the_benchmark_checks_a_list_with_every_outcome_and_leaves_nothing():
    result = campaign_list_check_bench(rows=400, batch_rows=100)
    assert (result["rows"], result["checked"], result["status"]) == (400, 400, "checked")
    expected = {problem: 400 * share // 100 for problem, share in MIX.items()}
    expected["found"] = 400 - sum(expected.values())
    assert result["outcomes"] == dict(sorted(expected.items()))
    assert result["batches"] == 4
    assert result["queries_per_batch"] == 6
    assert campaign_list_budgets({"campaign_lists": result})[0]["passed"]
    assert "400-row CSV" in campaign_list_markdown({"campaign_lists": result})[1]
    assert not Campaign.objects.exists()
    assert not CampaignEntry.objects.exists()
    assert not Organisation.objects.filter(name__startswith="Bench Campaign").exists()
    assert not Patient.objects.exists()
