"""Tests of what a council deploys on AWS (deploy/connect/): forwarder, contact flow, stack."""
