"""Veille on Slack: a Bolt `AsyncApp` (Socket Mode or HTTP) that only translates.

`app.create_app` builds the app and registers the listeners by kind (events, commands, actions,
views); `gateway.SlackGateway` is how the core acts on Slack; `runner.start` runs it all;
`descriptor.SLACK` is what bot/app.py and the CLI know of Slack (bot/platforms/base.py).
"""
