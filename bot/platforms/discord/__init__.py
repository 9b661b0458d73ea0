"""The Discord adapter (discord.py 2.x). It only translates; all behaviour is in bot.core.

- client.py: the AutoShardedClient, intents, DISCORD_API_URL, message events → core
- events.py: discord.Message → MessageEvent (media, replies, roles, AI apps, edits)
- gateway.py: DiscordGateway, the core's port to Discord, with GatewayError mapping
- render.py: Card → embed, ticket buttons, (spoiler) file
- actions.py: restart-safe ticket buttons (DynamicItem `veille:<action>:<ticket>`), note modal
- commands.py, translator.py: slash commands and context menu, localised EN/FR
- setup.py, setup_checks.py: the `/veille setup` wizard and its permission check
- replies.py: core Replies and refusals as interaction responses
- runner.py: `start(settings, veille)` for bot/app.py
- descriptor.py: DISCORD, what bot/app.py and the CLI know of Discord (bot/platforms/base.py)
"""
