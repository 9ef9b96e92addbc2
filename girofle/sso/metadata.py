"""An instance's SAML service-provider metadata, to give the identity provider: what GitLab
serves at /users/auth/saml/metadata (ruby-saml's OneLogin::RubySaml::Metadata)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from girofle.config import GirofleConfig
from girofle.inventory import Instance
from girofle.sso.render import acs_url, sp_entity_id

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def sp_metadata(config: GirofleConfig, instance: Instance) -> str:
    """The EntityDescriptor of ``instance`` as a SAML service provider."""
    assert config.sso is not None and config.sso.saml is not None
    ET.register_namespace("md", MD)
    root = ET.Element(f"{{{MD}}}EntityDescriptor", entityID=sp_entity_id(config, instance))
    sp = ET.SubElement(
        root,
        f"{{{MD}}}SPSSODescriptor",
        AuthnRequestsSigned="false",
        WantAssertionsSigned="false",
        protocolSupportEnumeration=PROTOCOL,
    )
    ET.SubElement(sp, f"{{{MD}}}NameIDFormat").text = config.sso.saml.name_identifier_format
    ET.SubElement(
        sp,
        f"{{{MD}}}AssertionConsumerService",
        Binding=HTTP_POST,
        Location=acs_url(config, instance),
        index="0",
        isDefault="true",
    )
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
