"""Network policy shared by reference fetches and webhooks: which hosts and addresses may be dialled."""
