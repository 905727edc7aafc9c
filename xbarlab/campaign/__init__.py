"""Campaigns: the same study over many seeded virtual chips (and real benches), on Dask.

``xbarlab campaign FILE.toml`` (or `run_campaign(load_campaign(path))`) expands a campaign file
(`spec`) into tasks, each a protocol run on its own variant of a bench (`variants`), runs them
on a `dask.distributed` cluster (`runner`, `task`) and writes the results table and plots
(`results`). The campaign is a run of the store and each task a child run of it.
"""

from xbarlab.campaign.runner import CampaignResult, run_campaign
from xbarlab.campaign.spec import Campaign, CampaignFileError, Task, load_campaign, parse_campaign

__all__ = ["Campaign", "CampaignFileError", "CampaignResult", "Task", "load_campaign",
           "parse_campaign", "run_campaign"]
