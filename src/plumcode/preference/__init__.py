"""Preference stage: executed samples + verdicts -> KTO (unpaired) / DPO (paired) records."""

from plumcode.preference.build import PreferenceConfig, PreferenceSummary, build_preferences, normalize_code

__all__ = ["PreferenceConfig", "PreferenceSummary", "build_preferences", "normalize_code"]
