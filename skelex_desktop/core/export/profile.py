"""The attributes of DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile)
that the exporter removes itself, before dicognito replaces UIDs, identifiers and dates.

dicognito pseudonymises UIDs, person names, identifiers, addresses and dates; it leaves free
text (descriptions, comments) alone. These are the Table E.1-1 attributes with action X (or
X/Z/D, where removal is chosen) that carry free text, names of places or organisations, or
device identities. Patient sex, age, size and weight are kept (Retain Patient Characteristics
Option); private attributes, overlays and curves are removed as a whole.
"""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword

REMOVED_KEYWORDS = (
    "AcquisitionComments", "AcquisitionDeviceProcessingDescription",
    "ActualHumanPerformersSequence", "AdditionalPatientHistory", "AdmissionID",
    "AdmittingDiagnosesCodeSequence", "AdmittingDiagnosesDescription", "Allergies",
    "AuthorObserverSequence", "BranchOfService", "CommentsOnThePerformedProcedureStep",
    "ConfidentialityConstraintOnPatientDataDescription", "ContributionDescription",
    "CountryOfResidence", "CurrentPatientLocation", "CustodialOrganizationSequence",
    "DataSetTrailingPadding", "DerivationDescription", "DetectorID", "DeviceSerialNumber",
    "DigitalSignaturesSequence", "DischargeDiagnosisDescription", "DistributionAddress",
    "DistributionName", "EthnicGroup", "FrameComments", "GantryID", "GeneratorID",
    "HumanPerformerName", "HumanPerformerOrganization", "IconImageSequence",
    "IdentifyingComments", "ImageComments", "ImagePresentationComments",
    "ImagingServiceRequestComments", "Impressions", "InstitutionAddress", "InstitutionName",
    "InstitutionalDepartmentName", "InsurancePlanIdentification",
    "IntendedRecipientsOfResultsIdentificationSequence", "InterpretationApproverSequence",
    "InterpretationAuthor", "InterpretationDiagnosisDescription", "InterpretationIDIssuer",
    "InterpretationRecorder", "InterpretationText", "InterpretationTranscriber",
    "IssuerOfAdmissionID", "IssuerOfPatientID", "IssuerOfServiceEpisodeID", "MedicalAlerts",
    "MedicalRecordLocator", "MilitaryRank", "ModifiedAttributesSequence",
    "ModifiedImageDescription", "ModifyingDeviceID", "NameOfPhysiciansReadingStudy",
    "NamesOfIntendedRecipientsOfResults", "Occupation", "OperatorIdentificationSequence",
    "OperatorsName", "OriginalAttributesSequence", "OrderCallbackPhoneNumber", "OrderEnteredBy",
    "OrderEntererLocation", "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames",
    "ParticipantSequence", "PatientAddress", "PatientBirthName", "PatientBirthTime",
    "PatientComments", "PatientInstitutionResidence", "PatientInsurancePlanCodeSequence",
    "PatientMotherBirthName", "PatientPrimaryLanguageCodeSequence",
    "PatientReligiousPreference", "PatientState", "PatientTelephoneNumbers",
    "PatientTelecomInformation", "PerformedLocation", "PerformedProcedureStepDescription",
    "PerformingPhysicianIdentificationSequence", "PerformingPhysicianName", "PersonAddress",
    "PersonIdentificationCodeSequence", "PersonName", "PersonTelephoneNumbers",
    "PhysicianApprovingInterpretation", "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence", "PhysiciansReadingStudyIdentificationSequence",
    "PlateID", "PreMedication", "ProtocolName", "ReasonForStudy",
    "ReasonForTheImagingServiceRequest", "ReasonForTheRequestedProcedure",
    "ReferencedPatientAliasSequence", "ReferencedPatientPhotoSequence",
    "ReferencedPatientSequence", "ReferringPhysicianAddress",
    "ReferringPhysicianIdentificationSequence", "ReferringPhysicianTelephoneNumbers",
    "RegionOfResidence", "RequestAttributesSequence", "RequestedContrastAgent",
    "RequestedProcedureComments", "RequestedProcedureDescription", "RequestedProcedureLocation",
    "RequestingPhysician", "RequestingService", "ResponsibleOrganization", "ResponsiblePerson",
    "ResultsComments", "ResultsDistributionListSequence", "ScheduledHumanPerformersSequence",
    "ScheduledPatientInstitutionResidence", "ScheduledPerformingPhysicianIdentificationSequence",
    "ScheduledProcedureStepDescription", "ScheduledProcedureStepLocation",
    "ScheduledStationName", "ServiceEpisodeDescription", "ServiceEpisodeID",
    "SeriesDescription", "SmokingStatus", "SpecialNeeds", "StudyComments", "StudyDescription",
    "TextComments", "TextString", "TopicAuthor", "TopicKeywords", "TopicSubject", "TopicTitle",
    "VerifyingObserverIdentificationCodeSequence", "VerifyingObserverName",
    "VerifyingOrganization", "VisitComments",
)

FILE_META_REMOVED = ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                     "ReceivingApplicationEntityTitle", "PrivateInformation",
                     "PrivateInformationCreatorUID")


def removed_tags() -> list[int]:
    """The tags of REMOVED_KEYWORDS that this pydicom version knows."""
    tags = (tag_for_keyword(k) for k in REMOVED_KEYWORDS)
    return sorted(t for t in tags if t is not None)


def is_overlay_or_curve(tag: int) -> bool:
    """Repeating groups 50xx (curves) and 60xx (overlays), removed as a whole."""
    group = tag >> 16
    return 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF
