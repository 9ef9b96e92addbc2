"""Single sign-on for every instance: OmniAuth settings in gitlab.rb, and each instance
registered with the identity provider where the provider allows it."""
